"""The serving layer: a small dbt project (``dbt/serving``) run inside the marts database after publication.

``build(settings, run_id)`` runs ``dbt build`` of that project in-process: BI-facing views (``spc_chart``),
indexes on what the dashboards filter and join by, grants to the read-only BI account
(``LAKEHOUSE_SERVING_BI_ROLE``) and tests that run in the marts database (keys and filter columns of the marts,
the indexes exist, the BI account can read every relation and write none). With PostgreSQL marts it uses
dbt-postgres (the pipeline's publish stage calls it, see ``pipelines.runner``); with the demo's DuckDB marts file
it uses dbt-duckdb and only the views apply (``make dashboards`` calls it).

The result has the transform's shape (``pipelines.transform.DbtBuildResult``) so the runner records it in the
ledger and emits its lineage the same way.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pipelines.lineage import duckdb_dataset, postgres_dataset
from pipelines.paths import DBT_PROJECT_DIR
from pipelines.settings import Settings
from pipelines.transform import (
    DbtBuildResult,
    ModelResult,
    TestResult,
    TransformError,
    _first_line,
    _summarise_failures,
    dbt_environment,
)

SERVING_PROJECT_DIR = DBT_PROJECT_DIR / "serving"
LAYER = "serving"


def serving_env(settings: Settings) -> dict[str, str]:
    """What ``dbt/serving/profiles.yml`` reads: the marts connection, split into dbt-postgres' fields."""
    env = {"LAKEHOUSE_MARTS_SCHEMA": settings.marts_schema}
    if settings.marts_backend == "duckdb":
        return {
            **env,
            "LAKEHOUSE_SERVING_TARGET": "duckdb",
            "LAKEHOUSE_SERVING_DUCKDB_PATH": str(_marts_file(settings)),
        }
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(settings.marts_pg_dsn.get_secret_value())
    return {
        **env,
        "LAKEHOUSE_SERVING_TARGET": "postgres",
        "LAKEHOUSE_SERVING_PG_HOST": str(p.get("host") or "localhost"),
        "LAKEHOUSE_SERVING_PG_PORT": str(p.get("port") or 5432),
        "LAKEHOUSE_SERVING_PG_USER": str(p.get("user") or ""),
        "DBT_ENV_SECRET_LAKEHOUSE_SERVING_PG_PASSWORD": str(p.get("password") or ""),
        "LAKEHOUSE_SERVING_PG_DBNAME": str(p.get("dbname") or "postgres"),
        "LAKEHOUSE_SERVING_PG_SSLMODE": str(p.get("sslmode") or "prefer"),
        "LAKEHOUSE_SERVING_PG_SSLROOTCERT": str(p.get("sslrootcert") or ""),
    }


def _marts_file(settings: Settings) -> Path:
    return Path(settings.marts_path).resolve()


def build(settings: Settings, run_id: str) -> DbtBuildResult:
    """``dbt build`` of the serving project in the marts database; failures are in the result, not raised."""
    from dbt.cli.main import dbtRunner

    started = time.perf_counter()
    target = (Path(settings.home) / "dbt" / "serving-target").resolve()
    target.mkdir(parents=True, exist_ok=True)
    args = [
        "build",
        "--project-dir",
        str(SERVING_PROJECT_DIR),
        "--profiles-dir",
        str(SERVING_PROJECT_DIR),
        "--target-path",
        str(target),
        "--log-path",
        str(target.parent / "serving-logs"),
        "--vars",
        json.dumps({"run_id": run_id, "bi_role": settings.serving_bi_role}),
        "--quiet",
        "--no-use-colors",
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
    ]
    with dbt_environment(serving_env(settings)):
        try:
            result = dbtRunner().invoke(args)
        finally:
            if settings.marts_backend == "duckdb":
                from pipelines.transform import _close_dbt_duckdb

                _close_dbt_duckdb()
    if result.result is None:
        raise TransformError(f"serving build could not run: {_first_line(result.exception)}")
    models, tests = _collect(settings, result.result.results)
    return DbtBuildResult(
        run_id=run_id,
        success=bool(result.success),
        models=models,
        tests=tests,
        duration_s=time.perf_counter() - started,
        error=None if result.success else _summarise_failures(models, tests, _first_line(result.exception)),
    )


def _dataset(settings: Settings, table: str):
    if settings.marts_backend == "postgres":
        return postgres_dataset(settings.marts_pg_dsn.get_secret_value(), settings.marts_schema, table)
    return duckdb_dataset(_marts_file(settings), settings.marts_schema, table)


def _collect(settings: Settings, results: list[Any]) -> tuple[list[ModelResult], list[TestResult]]:
    models: list[ModelResult] = []
    tests: list[TestResult] = []
    for res in results:
        node = res.node
        status = str(getattr(res.status, "value", res.status))
        if node.resource_type == "model":
            sources = [u.split(".")[-1] for u in node.depends_on.nodes if u.startswith("source.")]
            models.append(
                ModelResult(
                    name=node.name,
                    layer=LAYER,
                    relation=f"{node.schema}.{node.alias}",
                    inputs=[_dataset(settings, s) for s in sources],
                    output=_dataset(settings, node.alias),
                    status=status,
                    rows=None,
                    duration_s=float(res.execution_time or 0.0),
                    message=res.message if status != "success" else None,
                )
            )
        elif node.resource_type in ("test", "unit_test"):
            tests.append(
                TestResult(
                    name=node.name,
                    status=status,
                    failures=res.failures,
                    message=res.message if status not in ("pass", "success") else None,
                    model=None,
                    duration_s=float(res.execution_time or 0.0),
                )
            )
    return models, tests
