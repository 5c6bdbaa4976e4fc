"""One embedded build of the test data set per session, shared by the transform tests (dbt build is slow)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.settings import Settings
from pipelines.transform import DbtBuildResult, build
from tests.transform.dataset import write_dataset


@dataclass
class Built:
    settings: Settings
    result: DbtBuildResult
    facts: dict


@pytest.fixture(scope="session")
def embedded_build(tmp_path_factory) -> Built:
    home = tmp_path_factory.mktemp("embedded")
    settings = Settings(home=home)
    facts = write_dataset(Path(settings.lake_dir))
    result = build(settings, run_id="run-embedded-1")
    return Built(settings, result, facts)
