"""Shared pytest fixtures live in tests/fixtures/ (one module per real server the tests start)."""

import pytest

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.s3", "tests.fixtures.openlineage"]


@pytest.fixture(autouse=True)
def _landing_written_before_it_is_landed(monkeypatch):
    """Test data is written and closed before a test lands it: no settle window to wait out (tests of the
    window set LAKEHOUSE_LANDING_SETTLE_SECONDS themselves)."""
    monkeypatch.setenv("LAKEHOUSE_LANDING_SETTLE_SECONDS", "0")
