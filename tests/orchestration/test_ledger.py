"""The run ledger is append-only on both backends and detects tampering that bypasses the triggers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from pipelines import ledger


def _entry(run_id: str, stages: tuple[str, ...] = ("ingest", "validate"), **kw) -> ledger.LedgerEntry:
    return ledger.LedgerEntry(
        run_id=run_id,
        trigger="cli",
        who=ledger.who(),
        started_at=datetime(2026, 11, 23, 2, 0, tzinfo=UTC),
        stages=stages,
        package_version=ledger.package_version(),
        git_commit=ledger.git_commit(),
        **kw,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        eng = sa.create_engine(f"sqlite:///{tmp_path / 'control.sqlite'}")
    else:
        server = request.getfixturevalue("postgres_server")
        dsn = server.create_database("ledger_test")
        params = dict(p.split("=", 1) for p in dsn.split())
        eng = sa.create_engine(
            f"postgresql+psycopg://{params['user']}@{params['host']}:{params['port']}/{params['dbname']}"
        )
    ledger.ensure_schema(eng)
    ledger.ensure_schema(eng)  # idempotent: the second call must not fail or duplicate triggers
    yield eng
    eng.dispose()


def test_a_run_is_recorded_start_and_end(engine):
    ledger.append(engine, _entry("r1"))
    done = _entry(
        "r1",
        event="succeeded",
        ended_at=datetime(2026, 11, 23, 2, 1, tzinfo=UTC),
        inputs=[{"uri": "file://h/l/a.csv", "sha256": "ab" * 32, "size": 10}],
        outputs=[{"dataset": "marts.kpi", "rows": 7}],
        verdicts=[{"file": "a.csv", "sha256": "ab" * 32, "outcome": "accepted", "reason": None}],
    )
    ledger.append(engine, done)
    ledger.append(engine, _entry("r2"))  # a run that never finished
    runs = ledger.runs(engine)
    assert [r["run_id"] for r in runs] == ["r2", "r1"]
    assert runs[0]["status"] == "running or crashed"
    assert runs[1]["status"] == "succeeded" and runs[1]["outputs"] == [{"dataset": "marts.kpi", "rows": 7}]
    assert runs[1]["ended_at"] == "2026-11-23T02:01:00.000000Z"
    full = ledger.rows(engine)[1]
    assert full["detail"]["inputs"][0]["sha256"] == "ab" * 32 and full["detail"]["verdicts"][0]["outcome"] == "accepted"
    assert full["git_commit"] and full["package_version"] and "@" in full["who"]
    assert ledger.verify(engine) == []


@pytest.mark.parametrize("statement", ["UPDATE run_ledger SET who = 'mallory'", "DELETE FROM run_ledger"])
def test_update_and_delete_are_refused(engine, statement):
    ledger.append(engine, _entry("r1"))
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql(statement)
    assert [r["who"] for r in ledger.rows(engine)] == [ledger.who()]


def test_truncate_is_refused_on_postgres(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    ledger.append(engine, _entry("r1"))
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE run_ledger")
    assert len(ledger.rows(engine)) == 1


def test_tampering_past_the_triggers_is_detected(engine):
    for run in ("r1", "r2", "r3"):
        ledger.append(engine, _entry(run))
    # An administrator drops the trigger and edits a row: the hash chain still tells.
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE run_ledger DISABLE TRIGGER USER")
        else:
            conn.exec_driver_sql("DROP TRIGGER run_ledger_no_update")
            conn.exec_driver_sql("DROP TRIGGER run_ledger_no_delete")
        conn.exec_driver_sql("UPDATE run_ledger SET trigger = 'schedule' WHERE run_id = 'r2'")
        conn.exec_driver_sql("DELETE FROM run_ledger WHERE run_id = 'r1'")
    problems = ledger.verify(engine)
    assert any("run r2): content does not match" in p for p in problems)
    assert any("run r2): previous row missing" in p for p in problems)


def test_naive_timestamps_are_refused(engine):
    entry = _entry("r1")
    entry.started_at = datetime(2026, 11, 23, 2, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.append(engine, entry)


def test_a_run_recorded_in_steps_folds_to_one_status(engine):
    """A Dagster run writes one start/end pair per step under its run id."""
    ingest = _entry("dagster-run", stages=("ingest",))
    ledger.append(engine, ingest)
    ingest.event, ingest.ended_at = "succeeded", datetime(2026, 11, 23, 2, 1, tzinfo=UTC)
    ingest.outputs = [{"dataset": "landing.mes__batches", "rows": 3}]
    ledger.append(engine, ingest)
    transform = _entry("dagster-run", stages=("transform",))
    ledger.append(engine, transform)
    (run,) = ledger.runs(engine)
    assert run["status"] == "running or crashed" and run["stages"] == ["ingest", "transform"]
    transform.event, transform.ended_at, transform.error = "failed", datetime(2026, 11, 23, 2, 5, tzinfo=UTC), "boom"
    ledger.append(engine, transform)
    (run,) = ledger.runs(engine)
    assert run["status"] == "failed" and run["error"] == "boom"
    assert run["ended_at"] == "2026-11-23T02:05:00.000000Z"
    assert run["outputs"] == [{"dataset": "landing.mes__batches", "rows": 3}]


def _died(engine, run_id: str) -> None:
    """A real process starts a run in the ledger and dies (SIGKILL) before writing its end row."""
    import signal
    import subprocess
    import sys

    code = (
        "import sys, os, signal, sqlalchemy as sa\n"
        "from tests.orchestration.test_ledger import _entry\n"
        "from pipelines import ledger\n"
        f"ledger.append(sa.create_engine(sys.argv[1]), _entry({run_id!r}))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, engine.url.render_as_string(hide_password=False)])
    assert proc.returncode == -signal.SIGKILL


def test_a_run_whose_process_died_is_closed_as_abandoned_by_the_next(engine):
    _died(engine, "killed")
    ledger.append(engine, _entry("alive"))  # this process: still running, must stay open
    assert {r["run_id"]: r["status"] for r in ledger.runs(engine)} == {
        "killed": "running or crashed",
        "alive": "running or crashed",
    }
    assert ledger.close_abandoned(engine, "next-run") == ["killed"]
    runs = {r["run_id"]: r for r in ledger.runs(engine)}
    assert runs["killed"]["status"] == "abandoned" and runs["alive"]["status"] == "running or crashed"
    assert "ended without closing the run (closed by run next-run)" in runs["killed"]["error"]
    assert ledger.close_abandoned(engine, "another-run") == []  # closed once
    assert ledger.verify(engine) == []


def test_a_run_from_another_host_is_closed_only_after_the_timeout(engine):
    old = _entry("elsewhere", process={"host": "cgt-other-1", "boot_id": "x", "pid": 1, "start": "1"})
    ledger.append(engine, old)
    assert ledger.close_abandoned(engine, "soon", now=old.started_at + ledger.FOREIGN_RUN_TIMEOUT / 2) == []
    later = old.started_at + ledger.FOREIGN_RUN_TIMEOUT * 2
    assert ledger.close_abandoned(engine, "later", now=later) == ["elsewhere"]
    (run,) = ledger.runs(engine)
    assert run["status"] == "abandoned" and "no end row 48 h after its start" in run["error"]


def test_the_next_pipeline_run_closes_a_dead_run(tmp_path):
    from pipelines import control, runner
    from pipelines.settings import Settings

    settings = Settings(home=tmp_path)
    engine = control.engine(settings)
    ledger.ensure_schema(engine)
    _died(engine, "killed")
    summary = runner.run(settings, ("validate",), trigger="test")
    assert summary.status == "succeeded"
    runs = {r["run_id"]: r for r in ledger.runs(engine)}
    assert runs["killed"]["status"] == "abandoned"
    assert f"closed by run {summary.run_id}" in runs["killed"]["error"]
    assert runs[summary.run_id]["status"] == "succeeded"
