"""End to end: the embedded demo through the real CLI, then the same pipeline on PostgreSQL.

Each scenario runs once per module (a small scale keeps it to about a minute) and the tests check what a user
and an auditor rely on: every generated file ends with the outcome the generator's truth file expects, the summary
and `lakehouse status --json` say so, every mart row carries the run id, the ledger is intact, and every lineage
event is valid OpenLineage.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines import ledger
from pipelines.settings import Settings

pytestmark = pytest.mark.slow
SCALE = "4"


def lakehouse(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    # The test data is written and closed before it is landed: no settle window to wait out (as tests/conftest.py).
    clean["LAKEHOUSE_LANDING_SETTLE_SECONDS"] = "0"
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        capture_output=True,
        text=True,
        env=clean | env,
        timeout=900,
    )


def _expected(truth_outcome: str) -> str:
    """The generator's expected outcome as the control DB records it."""
    if truth_outcome.startswith("quarantined"):
        return "quarantined"
    return "duplicate" if truth_outcome == "duplicate" else "accepted"


class Scenario:
    def __init__(self, env: dict[str, str]):
        self.env = env
        self.demo = lakehouse(env, "demo", "--scale", SCALE)
        assert self.demo.returncode == 0, self.demo.stderr[-3000:]
        self.settings = Settings(**{k.removeprefix("LAKEHOUSE_").lower(): v for k, v in env.items()})
        home = Path(self.settings.home)
        self.summary = json.loads((home / "demo" / "summary.json").read_text())
        self.truth = json.loads((home / "generated" / "truth.json").read_text())
        status = lakehouse(env, "status", "--json")
        assert status.returncode == 0, status.stderr
        self.status = json.loads(status.stdout)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Scenario:
    return Scenario({"LAKEHOUSE_HOME": str(tmp_path_factory.mktemp("embedded") / "home")})


@pytest.fixture(scope="module")
def on_postgres(tmp_path_factory, postgres_server) -> Scenario:
    catalog = postgres_server.create_database("e2e_catalog")
    marts = postgres_server.create_database("e2e_marts")
    postgres_server.create_database("e2e_control")
    control = (
        f"postgresql+psycopg://{postgres_server.superuser}@{postgres_server.host}:{postgres_server.port}/e2e_control"
    )
    return Scenario(
        {
            "LAKEHOUSE_HOME": str(tmp_path_factory.mktemp("pg") / "home"),
            "LAKEHOUSE_CATALOG_BACKEND": "postgres",
            "LAKEHOUSE_CATALOG_PG_DSN": catalog,
            "LAKEHOUSE_MARTS_BACKEND": "postgres",
            "LAKEHOUSE_MARTS_PG_DSN": marts,
            "LAKEHOUSE_CONTROL_DB_URL": control,
        }
    )


def check_every_file_has_the_expected_outcome(s: Scenario) -> None:
    files = {f["sha256"]: f for f in s.status["files"]}
    by_name: dict[str, list[dict]] = {}
    for f in s.status["files"]:
        by_name.setdefault(Path(f["file"]).name, []).append(f)
    for t in s.truth["files"]:
        recorded = by_name.get(Path(t["file"]).name)
        assert recorded, f"{t['file']} was generated but not landed"
        assert recorded[-1]["outcome"] == _expected(t["expected_outcome"]), (t, recorded)
        if recorded[-1]["outcome"] == "quarantined":
            assert recorded[-1]["reason"], f"{t['file']} quarantined without a reason"
        assert t["sha256"] in files  # raw bytes keep their hash
    counts = s.summary["files"]
    assert counts["landed"] == len(s.truth["files"])
    assert counts["landed"] == counts["accepted"] + counts["quarantined"] + counts["duplicate"]
    expected_q = sum(t["expected_outcome"].startswith("quarantined") for t in s.truth["files"])
    assert counts["quarantined"] == expected_q == len(s.summary["quarantined"])
    assert all(q["reason"] for q in s.summary["quarantined"])


def check_summary_is_complete(s: Scenario) -> None:
    summ = s.summary
    assert summ["status"] == "succeeded" and summ["scale"] == int(SCALE)
    assert set(summ["stage_seconds"]) >= {"generate", "ingest", "validate", "transform"}
    assert summ["rows_per_landing"] and all(v >= 0 for v in summ["rows_per_landing"].values())
    assert summ["curated_tables"] and summ["mart_tables"]
    assert all(n > 0 for n in summ["mart_tables"].values()), summ["mart_tables"]
    assert summ["lineage_events"] > 0 and summ["wall_seconds"] > 0


def check_ledger(s: Scenario, engine: sa.Engine) -> None:
    runs = ledger.runs(engine)
    assert runs[0]["run_id"] == s.summary["run_id"] and runs[0]["status"] == "succeeded"
    assert runs[0]["trigger"] == "cli:demo"
    assert ledger.verify(engine) == []
    detail = [r for r in ledger.rows(engine) if r["run_id"] == s.summary["run_id"]][-1]["detail"]
    assert {i["sha256"] for i in detail["inputs"]} >= {t["sha256"] for t in s.truth["files"]}
    assert {o["dataset"] for o in detail["outputs"]} >= {f"marts.{m}" for m in s.summary["mart_tables"]}
    # Every distinct file (by content) got a validation verdict in this run, with its outcome.
    assert {v["sha256"] for v in detail["verdicts"]} == {t["sha256"] for t in s.truth["files"]}
    assert all(v["outcome"] in ("accepted", "quarantined") for v in detail["verdicts"])


def check_status_reports_runs_and_quarantine(s: Scenario) -> None:
    assert s.status["runs"][0]["run_id"] == s.summary["run_id"]
    assert s.status["counts"]["quarantined"] == s.summary["files"]["quarantined"]
    assert {q["sha256"] for q in s.status["quarantined"]} == {
        f["sha256"] for f in s.status["files"] if f["outcome"] == "quarantined"
    }


# --- embedded defaults --------------------------------------------------------------------------------------


def test_demo_outcomes_match_the_injected_faults(embedded):
    check_every_file_has_the_expected_outcome(embedded)


def test_demo_summary_has_every_figure(embedded):
    check_summary_is_complete(embedded)


def test_demo_status_json(embedded):
    check_status_reports_runs_and_quarantine(embedded)


def test_demo_ledger(embedded):
    check_ledger(embedded, sa.create_engine(embedded.settings.control_db_url.get_secret_value()))


def test_every_mart_row_carries_the_run_id(embedded):
    import duckdb

    con = duckdb.connect(str(embedded.settings.marts_path), read_only=True)
    try:
        for table in embedded.summary["mart_tables"]:
            relation = f'"{Path(embedded.settings.marts_path).stem}"."{embedded.settings.marts_schema}"."{table}"'
            ids = con.execute(f"select distinct _run_id from {relation}").fetchall()
            assert ids == [(embedded.summary["run_id"],)], table
    finally:
        con.close()


def test_data_integrity_marts_match_the_control_database(embedded):
    import duckdb

    con = duckdb.connect(str(embedded.settings.marts_path), read_only=True)
    try:
        by_outcome = dict(
            con.execute("select outcome, sum(files) from marts.marts.ingest_files_daily group by 1").fetchall()
        )
        reasons = dict(
            con.execute(
                "select reason_kind, sum(files) from marts.marts.ingest_files_daily "
                "where outcome = 'quarantined' group by 1"
            ).fetchall()
        )
        runs = con.execute("select run_id, status from marts.marts.pipeline_runs").fetchall()
        flagged = con.execute("select sum(rows_flagged) from marts.marts.dq_flags_daily").fetchone()[0]
    finally:
        con.close()
    counts = embedded.status["counts"]
    assert {k: by_outcome.get(k, 0) for k in ("accepted", "quarantined", "duplicate")} == {
        k: counts[k] for k in ("accepted", "quarantined", "duplicate")
    }
    quarantined = [f for f in embedded.status["files"] if f["outcome"] == "quarantined"]
    assert sum(reasons.values()) == len(quarantined)
    assert set(reasons) == {f["reason_kind"] or "unspecified" for f in quarantined}
    # the marts are built inside the run, before its end row: it shows as running
    assert (embedded.summary["run_id"], "running") in runs
    assert flagged and flagged > 0


def test_every_lineage_event_is_valid_openlineage(embedded, openlineage_validator):
    lines = Path(embedded.settings.lineage_file).read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert len(events) == embedded.summary["lineage_events"]
    for event in events:
        assert openlineage_validator(event) == [], event["job"]["name"]
    jobs = {e["job"]["name"] for e in events}
    assert {"lakehouse.run", "lakehouse.ingest", "lakehouse.validate"} <= jobs
    assert any(j.startswith("lakehouse.dbt.") for j in jobs)
    assert {f"lakehouse.publish_marts.{m}" for m in embedded.summary["mart_tables"]} <= jobs
    # Every started step finished.
    started = {e["run"]["runId"] for e in events if e["eventType"] == "START"}
    ended = {e["run"]["runId"] for e in events if e["eventType"] in ("COMPLETE", "FAIL")}
    assert started == ended


def test_audit_trail_of_a_demo_batch(embedded):
    """`lakehouse audit-trail BATCH`: every raw file behind the batch's rows with its SHA-256 and outcome, the runs
    that touched it; the mart batch_audit_trail holds the same files."""
    import re

    import duckdb

    from pipelines.sources import FEEDS_BY_NAME

    controller_name = FEEDS_BY_NAME["bioreactor__readings"].name_identity
    export = next(
        f
        for f in embedded.truth["files"]
        if f["feed"] == "bioreactor__readings"
        and f["expected_outcome"].startswith("accepted")
        and re.fullmatch(controller_name, f["file"].split("/")[1])
    )
    batch = re.fullmatch(controller_name, export["file"].split("/")[1])["batch_id"]
    done = lakehouse(embedded.env, "audit-trail", batch, "--json")
    assert done.returncode == 0, done.stderr
    trail = json.loads(done.stdout)
    files = {f["file"]: f for f in trail["files"]}
    mine = files[export["file"].split("/")[1]]
    assert mine["sha256"] == export["sha256"] and mine["outcome"] == "accepted"
    assert mine["rows_landed"] == mine["rows_current"] > 0 and mine["rows_superseded"] == 0
    assert {"mes__batches", "mes__process_steps", "bioreactor__readings"} <= {f["feed"] for f in trail["files"]}
    landing = Path(embedded.settings.landing_dir)
    for f in trail["files"]:
        delivered = landing / f["feed"].split("__")[0] / f["deliveries"][0]["file"]
        assert hashlib.sha256(delivered.read_bytes()).hexdigest() == f["sha256"], f["file"]
    runs = {r["run_id"]: r["status"] for r in trail["runs"]}
    assert runs.get(embedded.summary["run_id"]) == "succeeded"

    con = duckdb.connect(str(embedded.settings.marts_path), read_only=True)
    try:
        relation = f'"{Path(embedded.settings.marts_path).stem}"."{embedded.settings.marts_schema}".batch_audit_trail'
        mart = dict(con.execute(f"select sha256, rows_landed from {relation} where batch_id = ?", [batch]).fetchall())
    finally:
        con.close()
    assert mart == {f["sha256"]: f["rows_landed"] for f in trail["files"] if f["rows_landed"]}

    text = lakehouse(embedded.env, "audit-trail", batch)
    assert text.returncode == 0 and export["sha256"][:12] in text.stdout and batch in text.stdout
    missing = lakehouse(embedded.env, "audit-trail", "B-NOT-A-BATCH")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == ["error: no file on record has rows of batch 'B-NOT-A-BATCH'"]


def test_ingesting_again_changes_nothing_and_a_redelivery_is_a_duplicate(embedded, tmp_path):
    landing = Path(embedded.settings.landing_dir)
    before = json.loads(lakehouse(embedded.env, "status", "--json").stdout)
    again = lakehouse(embedded.env, "ingest", str(landing / "mes"))
    assert again.returncode == 0, again.stderr
    assert "landed 0," in again.stdout and f"unchanged {len(list((landing / 'mes').iterdir()))}" in again.stdout
    after = json.loads(lakehouse(embedded.env, "status", "--json").stdout)
    assert after["counts"] == before["counts"]

    original = sorted((landing / "mes").glob("batches_*.csv"))[0]
    copy = tmp_path / "mes" / "batches_2099-01.csv"  # the same export delivered again under another name
    copy.parent.mkdir()
    copy.write_bytes(original.read_bytes())
    redelivered = lakehouse(embedded.env, "ingest", str(copy))
    assert redelivered.returncode == 0, redelivered.stderr
    status = json.loads(lakehouse(embedded.env, "status", "--json").stdout)
    (entry,) = [f for f in status["files"] if f["file"] == copy.name]
    assert entry["outcome"] == "duplicate" and original.name in entry["reason"]
    assert entry["sha256"] == hashlib.sha256(original.read_bytes()).hexdigest()
    assert status["counts"]["duplicate"] == before["counts"]["duplicate"] + 1


# --- PostgreSQL catalog, marts and control DB ---------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_backends_end_to_end(on_postgres):
    check_every_file_has_the_expected_outcome(on_postgres)
    check_summary_is_complete(on_postgres)
    check_status_reports_runs_and_quarantine(on_postgres)
    engine = sa.create_engine(on_postgres.settings.control_db_url.get_secret_value())
    assert engine.dialect.name == "postgresql"
    check_ledger(on_postgres, engine)
    import psycopg

    with psycopg.connect(on_postgres.settings.marts_pg_dsn.get_secret_value()) as conn:
        for table in on_postgres.summary["mart_tables"]:
            rows = conn.execute(
                f'select _run_id, count(*) from "{on_postgres.settings.marts_schema}"."{table}" group by 1'
            ).fetchall()
            assert [r[0] for r in rows] == [on_postgres.summary["run_id"]], table
            assert rows[0][1] == on_postgres.summary["mart_tables"][table]
