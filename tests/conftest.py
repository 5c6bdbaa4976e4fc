"""Shared pytest fixtures live in tests/fixtures/ (one module per real server the tests start)."""

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.s3", "tests.fixtures.openlineage"]
