"""The compiled SQL of a model from the last build, with its inputs swapped for test tables (SPC checks)."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.settings import Settings


def compiled_sql(settings: Settings, model: str, inputs: dict[str, str]) -> str:
    """SQL of ``model`` as dbt compiled it in ``settings.home``; each input relation (by model name) becomes the
    given table name. Fails if an input is not found, so a renamed model cannot make the check vacuous."""
    path = next((Path(settings.home) / "dbt" / "target" / "compiled").rglob(f"{model}.sql"))
    sql = path.read_text()
    for name, table in inputs.items():
        sql, count = re.subn(rf'"[^"]+"\."[^"]+"\."{name}"', table, sql)
        assert count, f"{name} not referenced by {model}"
    return sql
