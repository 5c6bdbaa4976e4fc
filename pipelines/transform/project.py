"""Where the dbt project is, the environment its profile reads, and the dbt sources generated from the registry."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

from pipelines import duck
from pipelines.paths import DBT_PROJECT_DIR
from pipelines.settings import Settings
from pipelines.sources import FEEDS, LINEAGE_COLUMNS

SOURCES_YML = DBT_PROJECT_DIR / "models" / "staging" / "__sources.yml"
# Inputs of `dbt parse`: a change to any of them makes the prepared manifest stale.
PARSE_INPUTS = ("dbt_project.yml", "models", "macros", "seeds", "tests")


def work_db_path(settings: Settings) -> Path:
    """The local DuckDB file dbt connects to: seeds, staging and intermediate views."""
    return (Path(settings.home) / "transform.duckdb").resolve()


def audit_schema(settings: Settings) -> str:
    """Where dbt writes and tests the marts before publication (no BI account has USAGE on it; ADR 0160)."""
    return f"{settings.marts_schema}_audit"


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as LAKEHOUSE_* variables (resolved), so the dbt plugin rebuilds exactly these settings."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, Path):
            value = value.resolve()
        env[f"LAKEHOUSE_{name.upper()}"] = str(value)
    return env


def dbt_env(settings: Settings) -> dict[str, str]:
    """Everything profiles.yml and dbt_project.yml read with env_var()."""
    lake = duck.lake_attachment(settings)
    marts = duck.marts_attachment(settings)
    control = duck.control_attachment(settings)
    return {
        **settings_env(settings),
        "LAKEHOUSE_DBT_WORK_DB": str(work_db_path(settings)),
        "DBT_ENV_SECRET_LAKEHOUSE_LAKE_ATTACH": lake.path,
        "LAKEHOUSE_DBT_LAKE_DATA_PATH": str(lake.options["DATA_PATH"]),
        "DBT_ENV_SECRET_LAKEHOUSE_MARTS_ATTACH": marts.path,
        "LAKEHOUSE_DBT_MARTS_TYPE": str(marts.options["TYPE"]),
        "DBT_ENV_SECRET_LAKEHOUSE_CONTROL_ATTACH": control.path,
        "LAKEHOUSE_DBT_CONTROL_TYPE": str(control.options["TYPE"]),
        "LAKEHOUSE_DBT_CONTROL_SCHEMA": duck.control_schema(settings),
        # Marts are built and tested here, then published to LAKEHOUSE_MARTS_SCHEMA (pipelines/transform/publish.py).
        "LAKEHOUSE_DBT_MARTS_BUILD_SCHEMA": audit_schema(settings),
    }


def dbt_vars(settings: Settings, run_id: str) -> dict[str, str]:
    """The vars of one run: the run id stamped on every row and where the lake is."""
    return {"run_id": run_id, "lake_root": duck.lake_root(settings)}


def parse_fingerprint(settings: Settings) -> str:
    """Hash of everything `dbt parse` depends on: project files and the parse-time env (marts schema)."""
    digest = hashlib.sha256(f"marts_schema={settings.marts_schema}\n".encode())
    for top in PARSE_INPUTS:
        root = DBT_PROJECT_DIR / top
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            digest.update(str(path.relative_to(DBT_PROJECT_DIR)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def render_sources_yml() -> str:
    """dbt sources for every feed in the registry (pipelines/sources.py), one source per system."""
    lines = [
        "---",
        "# GENERATED from pipelines/sources.py by `python -m pipelines.transform sources`; do not edit by hand.",
        "# Each table is one feed's validated landing Parquet (LAKE/landing/<system>__<entity>/*.parquet), read by",
        "# the landing() macro; tests/transform checks this file is current.",
        "version: 2",
        "",
        "sources:",
    ]
    systems: dict[str, list] = {}
    for feed in FEEDS:
        systems.setdefault(feed.system, []).append(feed)
    for system, feeds in systems.items():
        lines += [f"  - name: {system}", f"    description: Landing Parquet of the {system} feeds.", "    tables:"]
        for feed in feeds:
            lines += [
                f"      - name: {feed.entity}",
                f"        description: {_yaml_str(feed.description)}",
                f"        meta: {{feed: {feed.name}, key: [{', '.join(feed.key)}]}}",
                "        columns:",
            ]
            for col in (*feed.columns, *LINEAGE_COLUMNS):
                lines.append(f"          - name: {col.name}")
                lines.append(f"            data_type: {col.type.lower()}")
                if col.description:
                    lines.append(f"            description: {_yaml_str(col.description)}")
    return "\n".join(lines) + "\n"


def _yaml_str(text: str, indent: int = 14) -> str:
    """A double-quoted YAML scalar, folded over lines so yamllint's 120 columns hold."""
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    lines = textwrap.wrap(quoted, width=120 - indent - 14, break_long_words=False, break_on_hyphens=False)
    return f"\n{' ' * indent}".join(lines)
