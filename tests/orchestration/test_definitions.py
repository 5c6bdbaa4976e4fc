"""The Dagster code location: what it defines, the sensor's behaviour, and retries only on transient errors."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import dagster as dg
import pytest

from pipelines import runner
from pipelines.definitions import defs as load_defs
from pipelines.defs import ingest, resources
from pipelines.sources import FEEDS


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    return load_defs()


def test_assets_cover_ingest_validation_every_dbt_model_and_the_marts(defs):
    from pipelines.defs.dbt import manifest_path

    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert "raw_files" in keys
    assert {f"landing/{f.name}" for f in FEEDS} <= keys
    manifest = json.loads(manifest_path().read_text())
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] in ("model", "seed")}
    assert models and models <= {k.split("/")[-1] for k in keys}
    marts = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["fqn"][1] == "marts"}
    assert marts, "the dbt project has mart models"
    # Lineage of assets: dbt sources are wired to the validated landing assets.
    graph = defs.resolve_asset_graph()
    staging = [k for k in graph.get_all_asset_keys() if k.path[-1].startswith("stg_")]
    assert staging and all(
        any(p.path[0] == "landing" for p in graph.get(k).parent_keys) for k in staging if "__" in k.path[-1]
    )


def test_checks_carry_ge_and_dbt_tests(defs):
    checks = defs.resolve_asset_graph().asset_check_keys
    ge = {c.asset_key.to_user_string() for c in checks if c.name == "great_expectations"}
    assert ge == {f"landing/{f.name}" for f in FEEDS}
    assert any(c.name != "great_expectations" for c in checks), "dbt tests are asset checks"


def test_nightly_schedule_and_sensor(defs):
    nightly = defs.resolve_schedule_def("nightly")
    assert (nightly.cron_schedule, nightly.execution_timezone) == ("0 2 * * *", "UTC")
    assert nightly.default_status == dg.DefaultScheduleStatus.RUNNING
    # The nightly job ends with the DuckLake housekeeping (snapshot expiry, recorded in the ledger).
    nightly_keys = {k.to_user_string() for k in nightly.job.selection.resolve(defs.resolve_asset_graph())}
    assert "ducklake_maintenance" in nightly_keys
    sensor = defs.resolve_sensor_def("new_landing_files")
    assert sensor.minimum_interval_seconds <= 60
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    # Sensor runs take new files all the way to the marts, one writing run at a time (queued, not dropped).
    assert sensor.job_name == nightly.job_name == "pipeline_job"
    job = defs.resolve_job_def("pipeline_job")
    assert job.tags == {"lakehouse/writes": "duckdb"}
    # Every asset a run can build; the control DB's tables are external sources (written by the runner itself).
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {
        k.to_user_string() for k in defs.resolve_asset_graph().materializable_asset_keys
    }


def test_settle_window_applies_to_every_landing_scan(tmp_path, monkeypatch):
    from pipelines import runner
    from pipelines.settings import Settings

    monkeypatch.setenv("LAKEHOUSE_LANDING_SETTLE_SECONDS", "30")
    settings = Settings(home=tmp_path / "home")
    old = _landed(settings.home, "batches_2026-01.csv", age_s=31)
    _landed(settings.home, "batches_2026-02.csv", age_s=5)
    assert runner.landing_files(settings) == [old]
    assert runner.settled([old, tmp_path / "vanished.csv"], 30) == [old]


def test_parent_lineage_events_for_dagster_runs(tmp_path):
    from pipelines.defs import lineage as defs_lineage

    home = tmp_path / "home"
    lakehouse = resources.LakehouseResource(home=str(home))

    @dg.op
    def noop():
        return 1

    @dg.job
    def tiny():
        noop()

    instance = dg.DagsterInstance.ephemeral()
    result = tiny.execute_in_process(instance=instance)
    run = instance.get_run_by_id(result.run_id)
    for sensor, event in (
        (defs_lineage.lineage_run_start, result.get_run_success_event()),
        (defs_lineage.lineage_run_complete, result.get_run_success_event()),
    ):
        ctx = dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_event=event,
            dagster_instance=instance,
            dagster_run=run,
            resources={"lakehouse": lakehouse},
        )
        sensor(ctx)
    events = [json.loads(line) for line in (home / "lineage" / "events.jsonl").read_text().splitlines()]
    assert [(e["eventType"], e["job"]["name"], e["run"]["runId"]) for e in events] == [
        ("START", "lakehouse.run", result.run_id),
        ("COMPLETE", "lakehouse.run", result.run_id),
    ]
    assert events[0]["eventTime"] <= events[1]["eventTime"]


def test_dbt_assets_run_in_the_duckdb_writer_pool_with_retries(defs):
    from pipelines.defs.dbt import dbt_models

    assert dbt_models.op.pool == resources.DUCKDB_WRITER_POOL
    assert dbt_models.op.retry_policy.max_retries >= 1


def _raised(make):
    try:
        make()
    except Exception as exc:  # noqa: BLE001 - the test classifies whatever was raised
        return exc
    raise AssertionError("nothing raised")


def _refused_connection():
    import sqlalchemy as sa

    from tests.fixtures.net import free_port

    sa.create_engine(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x").connect()


def _wrapped_lock():
    import duckdb

    try:
        raise duckdb.IOException('IO Error: Could not set lock on file "catalog.ducklake": Conflicting lock')
    except duckdb.IOException as exc:
        raise RuntimeError("dbt build could not run") from exc


def _missing_file():
    import duckdb

    duckdb.connect().execute("select * from read_parquet('/nonexistent/x.parquet')")


@pytest.mark.parametrize(
    ("make", "transient"),
    [
        (lambda: (_ for _ in ()).throw(runner.WriterBusy("another run (pid 12) is writing /srv")), True),
        (_refused_connection, True),  # a real refused TCP connection (sqlalchemy OperationalError)
        (_wrapped_lock, True),  # DuckDB's file lock, raised from inside another error
        (lambda: (_ for _ in ()).throw(runner.RunError("dbt build failed: not_null_batches_batch_id: fail")), False),
        (_missing_file, False),  # DuckDB IOException that is not a lock
        (lambda: Path("/nonexistent/suite.json").read_text(), False),
    ],
)
def test_only_transient_errors_are_retried(make, transient):
    assert runner.is_transient(_raised(make)) is transient


def _landed(home: Path, name: str, age_s: float) -> Path:
    path = home / "landing" / "mes" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("batch_id\nB1\n")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_sensor_requests_new_settled_files_once(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_LANDING_SETTLE_SECONDS", "10")
    home = tmp_path / "home"
    lakehouse = resources.LakehouseResource(home=str(home))
    old = _landed(home, "batches_2026-01.csv", age_s=120)
    fresh = _landed(home, "batches_2026-02.csv", age_s=0)  # still being written: wait for the next tick

    ctx = dg.build_sensor_context(resources={"lakehouse": lakehouse})
    request = ingest.new_landing_files(ctx)
    assert isinstance(request, dg.RunRequest)
    assert request.run_config["ops"]["raw_files"]["config"]["paths"] == [str(old)]

    again = ingest.new_landing_files(dg.build_sensor_context(cursor=ctx.cursor, resources={"lakehouse": lakehouse}))
    assert isinstance(again, dg.SkipReason)

    os.utime(fresh, (time.time() - 60, time.time() - 60))
    later = ingest.new_landing_files(dg.build_sensor_context(cursor=ctx.cursor, resources={"lakehouse": lakehouse}))
    assert later.run_config["ops"]["raw_files"]["config"]["paths"] == [str(fresh)]


def test_lakehouse_dev_writes_a_valid_instance_config_with_the_pool_limit(tmp_path):
    import yaml
    from dagster._core.instance.config import dagster_instance_config

    from pipelines.cli import DAGSTER_YAML

    (tmp_path / "dagster.yaml").write_text(DAGSTER_YAML)
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert yaml.safe_load(DAGSTER_YAML)["concurrency"]["pools"]["granularity"] == "op"
