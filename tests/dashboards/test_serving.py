"""The serving layer (dbt/serving, pipelines.serving) in a real PostgreSQL 15, after marts are published there.

Marts come from the transform test data set (tests/transform/dataset.py) built by the real dbt project into
PostgreSQL; the serving layer then runs through the pipeline's publish stage, as a deployed run does.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from pipelines import control, ledger, runner, serving
from pipelines.settings import Settings
from pipelines.transform import build
from tests.transform.dataset import write_dataset

pytestmark = pytest.mark.postgres

BI_ROLE = "bi_reader"


@pytest.fixture(scope="module")
def published(tmp_path_factory, postgres_server):
    lake = tmp_path_factory.mktemp("lake")
    write_dataset(lake)
    dsn = postgres_server.create_database("marts_serving")
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {BI_ROLE}")
        conn.execute(f"CREATE ROLE {BI_ROLE} NOLOGIN")
    settings = Settings(
        home=tmp_path_factory.mktemp("serving"),
        lake_dir=lake,
        marts_backend="postgres",
        marts_pg_dsn=dsn,
        serving_bi_role=BI_ROLE,
    )
    result = build(settings, run_id="run-serving-1")
    assert result.success, result.error
    summary = runner.run(settings, stages=["publish"], trigger="test")
    return settings, summary


def test_publish_stage_runs_the_serving_layer_in_postgres(published):
    settings, summary = published
    assert summary.status == "succeeded", summary.error
    assert summary.serving_views == ["spc_chart"]
    with psycopg.connect(settings.marts_pg_dsn.get_secret_value()) as conn:
        points, flagged = conn.execute(
            "select count(*), count(*) filter (where any_rule) from marts.spc_points"
        ).fetchone()
        view_rows, markers, rules = conn.execute(
            "select count(*), count(nelson_value), count(*) filter (where nelson_rules <> '') from marts.spc_chart"
        ).fetchone()
    assert points > 0 and flagged > 0, "the test data set has Nelson-rule points"
    assert (view_rows, markers, rules) == (points, flagged, flagged)


def test_indexes_and_grants_are_in_place(published):
    settings, _ = published
    with psycopg.connect(settings.marts_pg_dsn.get_secret_value()) as conn:
        indexes = {r[0] for r in conn.execute("select indexname from pg_indexes where schemaname = 'marts'")}
        relations = [
            r[0]
            for r in conn.execute(
                "select relname from pg_class c join pg_namespace n "
                "on c.relnamespace = n.oid where nspname = 'marts' "
                "and relkind in ('r', 'v')"
            )
        ]
        readable = [
            conn.execute("select has_table_privilege(%s, %s, 'SELECT')", (BI_ROLE, f"marts.{r}")).fetchone()[0]
            for r in relations
        ]
        writable = [
            conn.execute("select has_table_privilege(%s, %s, 'INSERT')", (BI_ROLE, f"marts.{r}")).fetchone()[0]
            for r in relations
        ]
    assert {"ix_bioreactor_hourly__batch_id_param_hour_utc", "ix_batch_overview__product_code_started_at"} <= indexes
    assert "spc_chart" in relations and len(relations) >= 12
    assert all(readable) and not any(writable)


def test_dbt_tests_ran_in_postgres_and_a_missing_grant_fails_them(published):
    settings, _ = published
    result = serving.build(settings, run_id="run-serving-2")  # a rerun changes nothing and still passes
    assert result.success, result.error
    names = {t.name for t in result.tests}
    assert {"dashboard_indexes_exist", "bi_role_reads_every_mart"} <= names
    assert len(result.tests) >= 15
    with psycopg.connect(settings.marts_pg_dsn.get_secret_value(), autocommit=True) as conn:
        conn.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA marts REVOKE SELECT ON TABLES FROM {BI_ROLE}")
        conn.execute(f"REVOKE SELECT ON marts.ppk_cqa FROM {BI_ROLE}")
        conn.execute("DROP INDEX marts.ix_spc_points__product_code_attribute_seq")
    # dbt's own hooks would re-make them before any test, so run the compiled tests as dbt would after a
    # publication that lost them: each must now return the missing pieces
    compiled = settings.home / "dbt" / "serving-target" / "compiled" / "cgt_lakehouse_serving" / "tests"
    with psycopg.connect(settings.marts_pg_dsn.get_secret_value()) as conn:
        lost_grants = conn.execute((compiled / "bi_role_reads_every_mart.sql").read_text()).fetchall()
        lost_indexes = conn.execute((compiled / "dashboard_indexes_exist.sql").read_text()).fetchall()
    assert [r[0] for r in lost_grants] == ["ppk_cqa"]
    assert [r[0] for r in lost_indexes] == ["ix_spc_points__product_code_attribute_seq"]
    assert serving.build(settings, run_id="run-serving-3").success  # and the next build restores both


def test_ledger_and_lineage_include_the_serving_layer(published):
    settings, summary = published
    runs = ledger.runs(control.engine(settings), limit=5)
    mine = next(r for r in runs if r["run_id"] == summary.run_id)
    assert {"dataset": "marts.spc_chart", "kind": "view"} in mine["outputs"]
    events = [json.loads(line) for line in settings.lineage_file.read_text().splitlines()]
    serving_events = [e for e in events if e["job"]["name"] == "lakehouse.serving.spc_chart"]
    assert {e["eventType"] for e in serving_events} == {"START", "COMPLETE"}
    complete = next(e for e in serving_events if e["eventType"] == "COMPLETE")
    assert complete["inputs"][0]["name"] == "marts_serving.marts.spc_points"
    assert complete["outputs"][0]["name"] == "marts_serving.marts.spc_chart"
    assert complete["outputs"][0]["namespace"].startswith("postgres://127.0.0.1:")
