"""dbt build on embedded defaults: every layer builds, rows carry the run id, lineage names are right."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pipelines import duck
from pipelines.sources import FEEDS, LINEAGE_COLUMNS
from pipelines.transform import build
from pipelines.transform.project import SOURCES_YML, render_sources_yml, work_db_path

MARTS = {
    "batch_overview",
    "qc_results_vs_spec",
    "kpi_monthly",
    "oos_rate_monthly",
    "bioreactor_hourly",
    "spc_limits",
    "spc_points",
    "ppk_cqa",
    "ingest_files_daily",
    "pipeline_runs",
    "dq_flags_daily",
}
INTEGRITY_MARTS = {"ingest_files_daily", "pipeline_runs", "dq_flags_daily"}
# Staging views over the control database (data-integrity marts), beside one per feed.
CONTROL_STAGING = {"stg_control__ingest_manifest", "stg_control__file_outcomes", "stg_control__run_ledger"}


def _failures(result) -> str:
    lines = [f"{m.name}: {m.status} {m.message}" for m in result.failed_models]
    lines += [f"{t.name}: {t.status} {t.message}" for t in result.failed_tests]
    return "\n".join(lines)


def test_build_succeeds_with_every_layer(embedded_build):
    result = embedded_build.result
    assert result.success, _failures(result)
    by_layer: dict[str, set[str]] = {}
    for model in result.models:
        by_layer.setdefault(model.layer, set()).add(model.name)
    assert by_layer["staging"] == {f"stg_{feed.name}" for feed in FEEDS} | CONTROL_STAGING
    assert by_layer["marts"] >= MARTS
    assert len(by_layer["curated"]) == len(FEEDS)
    assert {"qc_specifications", "products", "equipment"} <= by_layer["seed"]
    # data tests and unit tests ran and passed
    assert any(t.name.startswith("unique_") for t in result.tests)
    assert {t.name for t in result.tests} >= {
        "curated_keeps_the_latest_ingested_version",
        "qc_conformance_follows_the_spec_in_effect",
        "spc_rules_flag_the_point_completing_the_pattern",
        "ppk_is_one_sided_for_lower_limit_specs",
    }
    assert not result.failed_tests


def test_every_curated_and_mart_row_carries_the_run_id(embedded_build):
    settings = embedded_build.settings
    conn = duck.connect(settings, read_only=True)
    try:
        for model in embedded_build.result.models:
            if model.layer not in ("curated", "marts"):
                continue
            db, schema, table = model.relation.split(".")
            ids = conn.execute(f'select distinct _run_id from "{db}"."{schema}"."{table}"').fetchall()
            if model.name in INTEGRITY_MARTS:
                continue  # a bare build() has an empty control DB; tests/e2e checks them after a real run
            assert ids == [("run-embedded-1",)], model.name
            assert model.rows and model.rows > 0, model.name
    finally:
        conn.close()


def test_result_names_datasets_per_openlineage_conventions(embedded_build):
    settings = embedded_build.settings
    models = {m.name: m for m in embedded_build.result.models}
    host = socket.gethostname()
    lake = Path(settings.lake_dir).resolve()
    stg = models["stg_mes__batches"]
    assert [(d.namespace, d.name) for d in stg.inputs] == [(f"file://{host}", str(lake / "landing/mes__batches"))]
    assert stg.output.namespace == f"duckdb://{work_db_path(settings)}"
    curated = models["batches"]
    assert (curated.output.namespace, curated.output.name) == (f"file://{host}", str(lake / "ducklake/curated/batches"))
    # DuckLake really writes the table's files there
    assert list((lake / "ducklake/curated/batches").glob("*.parquet"))
    mart = models["batch_overview"]
    marts_path = Path(settings.marts_path).resolve()
    assert (mart.output.namespace, mart.output.name) == (f"duckdb://{marts_path}", "marts.marts.batch_overview")
    assert curated.output in mart.inputs


def test_staging_views_have_the_registry_columns_and_types(embedded_build):
    conn = duck.connect(embedded_build.settings, database=work_db_path(embedded_build.settings), read_only=True)
    try:
        for feed in FEEDS:
            described = conn.execute(f"describe staging.stg_{feed.name}").fetchall()
            got = [(name, dtype) for name, dtype, *_ in described]
            want = [(c.name, _duck_type(c.type)) for c in (*feed.columns, *LINEAGE_COLUMNS)]
            assert got == want, feed.name
    finally:
        conn.close()


def _duck_type(registry_type: str) -> str:
    return {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}.get(registry_type, registry_type)


def test_later_export_of_a_record_wins_in_curated(embedded_build):
    conn = duck.connect(embedded_build.settings, marts=False, read_only=True)
    try:
        row = conn.execute("select disposition from lake.curated.batches where batch_id = 'B033'").fetchone()
        count = conn.execute("select count(*) from lake.curated.batches").fetchone()[0]
    finally:
        conn.close()
    assert row == ("released",)
    assert count == embedded_build.facts["batches"]


def test_marts_show_the_designed_quality_events(embedded_build):
    conn = duck.connect(embedded_build.settings, lake=False, read_only=True)
    try:
        oos = conn.execute(
            "select batch_id, attribute from marts.marts.qc_results_vs_spec where is_oos order by all"
        ).fetchall()
        overview = conn.execute(
            "select disposition, coi_verified, fold_expansion, right_first_time "
            "from marts.marts.batch_overview where batch_id = 'B005'"
        ).fetchone()
        hourly = conn.execute(
            "select readings, good_readings, bad_readings from marts.marts.bioreactor_hourly "
            "where batch_id = 'B001' and param = 'temperature' order by hour_utc"
        ).fetchall()
    finally:
        conn.close()
    assert oos == [("B005", "sterility"), ("B008", "endotoxin")]
    assert overview == ("rejected", True, 50.0, False)
    assert hourly == [(60, 59, 1), (60, 60, 0)]


def test_rebuild_replaces_curated_and_keeps_the_previous_snapshot(embedded_build, tmp_path):
    """A second run (new run id) succeeds on the same lake, and DuckLake time travel still shows the first."""
    settings = embedded_build.settings
    second = build(settings, run_id="run-embedded-2", select="batches")
    assert second.success, _failures(second)
    conn = duck.connect(settings, marts=False, read_only=True)
    try:
        now = conn.execute("select distinct _run_id from lake.curated.batches").fetchall()
        snapshots = [s[0] for s in conn.execute("select snapshot_id from lake.snapshots() order by 1").fetchall()]
        before = None
        for snap in reversed(snapshots[:-1]):
            before = conn.execute(
                f"select distinct _run_id from lake.curated.batches at (version => {snap})"
            ).fetchall()
            if before:
                break
    finally:
        conn.close()
    assert now == [("run-embedded-2",)]
    assert before == [("run-embedded-1",)]


def test_sources_yml_is_generated_from_the_registry():
    assert SOURCES_YML.read_text() == render_sources_yml(), "run: python -m pipelines.transform sources"


def test_one_staging_model_per_feed():
    staging = Path(SOURCES_YML).parent
    assert sorted(p.stem for p in staging.glob("stg_*.sql")) == sorted(f"stg_{f.name}" for f in FEEDS)


def test_build_refuses_an_empty_run_id(embedded_build):
    with pytest.raises(ValueError, match="run id"):
        build(embedded_build.settings, run_id=" ", select="batches")
