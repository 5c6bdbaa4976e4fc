"""What the sensor's run does on deployed-like back ends: PostgreSQL marts with the serving layer.

``pipeline_job`` (the job of the new-files sensor and of the nightly schedule) runs twice on one home: the first
run builds everything; the second, started as the sensor starts it (run config naming the one new file), lands
and validates only that file, builds only the models downstream of its feed (ADR 0141), ends with the serving
layer in the PostgreSQL marts and the housekeeping, and leaves every batch in the marts exactly once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from pipelines import ledger
from pipelines.definitions import defs as load_defs
from pipelines.defs.ingest import IngestConfig
from pipelines.defs.resources import LakehouseResource
from pipelines.generate import generate
from pipelines.resources import Resources
from pipelines.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(1800)]

BI_ROLE = "bi_reader_dagster"


def _notes(engine, run_id: str, topic: str) -> list[dict]:
    return [
        r["detail"]["notes"][topic]
        for r in ledger.rows(engine)
        if r["run_id"] == run_id and topic in (r["detail"] or {}).get("notes", {})
    ]


def test_sensor_run_is_incremental_end_to_end_and_ends_with_the_serving_layer(tmp_path, postgres_server, monkeypatch):
    dsn = postgres_server.create_database("marts_dagster")
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {BI_ROLE}")
        conn.execute(f"CREATE ROLE {BI_ROLE} NOLOGIN")
    monkeypatch.setenv("LAKEHOUSE_MARTS_BACKEND", "postgres")
    monkeypatch.setenv("LAKEHOUSE_MARTS_PG_DSN", dsn)
    monkeypatch.setenv("LAKEHOUSE_SERVING_BI_ROLE", BI_ROLE)
    home = tmp_path / "home"
    settings = Settings(home=home)
    generate(settings, Path(settings.landing_dir), scale=3, seed=11, fault_rate=0.0)
    held = sorted(Path(settings.landing_dir, "bioreactor").glob("*.csv"))[-1]  # one export arrives later
    later = tmp_path / held.name
    shutil.move(held, later)

    job = load_defs().resolve_job_def("pipeline_job")
    instance = dg.DagsterInstance.ephemeral()
    resources = {"lakehouse": LakehouseResource(home=str(home))}
    first = job.execute_in_process(instance=instance, resources=resources)
    assert first.success

    shutil.move(later, held)
    second = job.execute_in_process(
        instance=instance,
        resources=resources,
        run_config=dg.RunConfig(ops={"raw_files": IngestConfig(paths=[str(held)])}),
        tags={"dagster/sensor_name": "new_landing_files"},
    )
    assert second.success

    engine = Resources.of(Settings(home=home)).control
    run = next(r for r in ledger.runs(engine) if r["run_id"] == second.run_id)
    assert run["status"] == "succeeded" and run["trigger"] == "dagster:sensor:new_landing_files"
    assert {"ingest", "validate", "transform", "publish"} <= set(run["stages"])
    # Only the new file was landed; the transform built the bioreactor feed's downstream models only.
    assert run["inputs"] == 1
    (transform,) = _notes(engine, second.run_id, "transform")
    assert transform["select"] == "source:bioreactor.readings+", transform
    built = {e.asset_key.path[-1] for e in second.get_asset_materialization_events()}
    assert "bioreactor_hourly" in built and "stg_mes__batches" not in built, sorted(built)
    # The dbt step ended with the serving layer; the housekeeping ran too (no step was skipped).
    steps = {e.step_key for e in second.all_events if e.is_step_success}
    assert steps == {"raw_files", "landing", "dbt_models", "ducklake_maintenance"}, steps
    with psycopg.connect(dsn) as conn:
        batches, rows = conn.execute("select count(distinct batch_id), count(*) from marts.batch_overview").fetchone()
        hourly_batches, dupes = conn.execute(
            "select count(distinct batch_id), count(*) - count(distinct (batch_id, param, hour_utc))"
            " from marts.bioreactor_hourly"
        ).fetchone()
        readable = conn.execute(
            "select bool_and(has_table_privilege(%s, c.oid, 'SELECT')) from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace where nspname = 'marts' and relkind in ('r', 'v')",
            (BI_ROLE,),
        ).fetchone()[0]
        views = [v for (v,) in conn.execute("select viewname from pg_views where schemaname = 'marts'")]
    assert (batches, rows) == (3, 3)
    assert (hourly_batches, dupes) == (3, 0)
    assert readable and views == ["spc_chart"]
