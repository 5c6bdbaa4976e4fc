"""Fixtures for the tests of a built bundle (marker `bundle`; `make bundle-test` runs them after `make bundle`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLE = Path(os.environ.get("CGT_BUNDLE_DIR", REPO / "dist" / "bundle"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bundle: needs a built dist/bundle (make bundle-test builds it first)")


@pytest.fixture(scope="session")
def bundle_dir() -> Path:
    # Building takes minutes (Go, Maven, PyPI), so plain `pytest` does not start one behind the user's back;
    # `make bundle-test` builds (or incrementally rebuilds) the bundle and then runs these tests.
    if not (BUNDLE / "manifest.json").exists():
        pytest.skip(f"no built bundle at {BUNDLE}: run `make bundle-test` (it builds the bundle first)")
    return BUNDLE


@pytest.fixture(scope="session")
def manifest(bundle_dir: Path) -> dict:
    return json.loads((bundle_dir / "manifest.json").read_text())


def artifact(manifest: dict, component: str) -> dict:
    for entry in manifest["artifacts"]:
        if entry["component"] == component:
            return entry
    raise AssertionError(f"component {component} is not in manifest.json")
