"""Incremental runs give what a full rebuild gives, and cost only what is new.

One home, a small generated data set delivered in two parts: a first run, a run with nothing new, a run after
the rest arrives (incremental curated and mart models), then ``--full-refresh``; the marts after the incremental
run must equal the marts after the full refresh. Ingest's skip of unchanged files and its periodic full re-hash
are checked on the same home.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines import control, ledger, runner
from pipelines.generate import generate
from pipelines.resources import Resources
from pipelines.settings import Settings

# Four pipeline runs on one home: slow on a loaded 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


# Marts built from the control DB (dbt source `control`): they describe the pipeline's own runs and files.
RUN_RECORD_MARTS = {"pipeline_runs", "ingest_files_daily"}


def marts_snapshot(settings: Settings, dest: Path) -> Path:
    """A copy of the marts DuckDB file (the embedded marts database) at this moment."""
    shutil.copyfile(settings.marts_path, dest)
    return dest


def mart_differences(a: Path, b: Path) -> dict[str, int]:
    """Per mart table: rows in one file and not the other, ignoring ``_run_id`` (which run wrote the row) and
    differences in the last bits of doubles (aggregation order)."""
    con = duckdb.connect()
    con.execute(f"attach '{a}' as a (read_only)")
    con.execute(f"attach '{b}' as b (read_only)")
    tables = [t for (t,) in con.execute("select table_name from duckdb_tables() where database_name = 'a'").fetchall()]
    out = {}
    for t in tables:
        cols = con.execute(
            "select column_name, data_type from duckdb_columns() where database_name = 'a' and table_name = ? "
            "order by column_index",
            [t],
        ).fetchall()
        exprs = ", ".join(
            f"round({c}, 9 - cast(ceil(log10(abs({c}) + 1e-300)) as int)) as {c}" if ty == "DOUBLE" else c
            for c, ty in cols
            if c != "_run_id"
        )
        left, right = f"select {exprs} from a.marts.{t}", f"select {exprs} from b.marts.{t}"
        diff = con.execute(
            f"select (select count(*) from ({left} except all {right}))"
            f" + (select count(*) from ({right} except all {left}))"
        ).fetchone()[0]
        out[t] = int(diff)
    assert tables, "no mart tables"
    return out


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("incremental")
    settings = Settings(home=root / "home", landing_settle_seconds=0)  # module scope: before conftest sets it
    generate(settings, Path(settings.landing_dir), scale=3, seed=11, fault_rate=0.0)
    held = root / "held"
    held.mkdir()
    reactor_files = sorted(Path(settings.landing_dir, "bioreactor").glob("*.csv"))
    for f in reactor_files[-1:]:  # one batch's controller export arrives later
        shutil.move(f, held / f.name)
    return settings, held


def test_incremental_runs_equal_a_full_refresh(home, tmp_path):
    settings, held = home
    res = Resources(settings)
    first = runner.run(res, trigger="test")
    assert first.status == "succeeded", first.error
    assert first.curated_tables["bioreactor_readings"] > 0

    # Nothing new: files are not read again and transform is skipped, with the reason in the ledger.
    idle = runner.run(res, trigger="test")
    assert idle.status == "succeeded", idle.error
    assert idle.files["landed"] == 0 and idle.files["unchanged"] == first.files["landed"]
    assert idle.transform_skipped and first.run_id in idle.transform_skipped
    assert not idle.curated_tables and not idle.mart_tables
    note = ledger.last_note(res.control, "transform")
    assert note[0] == idle.run_id and "nothing new" in note[1]["skipped"]

    # One more batch arrives: only the bioreactor models are rebuilt, and only its groups are written.
    for f in held.iterdir():
        shutil.move(f, Path(settings.landing_dir, "bioreactor", f.name))
    more = runner.run(res, trigger="test")
    assert more.status == "succeeded", more.error
    assert more.files["accepted"] == 1
    built = {m.name for m in more._results["transform"].models}
    assert {"bioreactor_readings", "bioreactor_hourly"} <= built
    assert "batches" not in built and "qc_results" not in built
    with res.duckdb(read_only=True) as con:
        written = con.execute(
            "select count(distinct batch_id) from lake.curated.bioreactor_readings where _run_id = ?", [more.run_id]
        ).fetchone()[0]
        marts_written = con.execute(
            "select count(distinct batch_id) from marts.marts.bioreactor_hourly where _run_id = ?", [more.run_id]
        ).fetchone()[0]
    assert written == 1 and marts_written == 1
    incremental = marts_snapshot(settings, tmp_path / "incremental.duckdb")

    full = runner.run(res, trigger="test", full_refresh=True)
    assert full.status == "succeeded", full.error
    assert full.curated_tables["bioreactor_readings"] == more.curated_tables["bioreactor_readings"]
    assert set(full.mart_tables) >= {"bioreactor_hourly", "batch_overview", "spc_points"}
    differences = mart_differences(incremental, marts_snapshot(settings, tmp_path / "full.duckdb"))
    # The data-integrity marts read the control DB, i.e. the runs themselves: the full refresh is one more run, so
    # they differ by design. Every mart of the data differs in nothing.
    assert set(differences) >= RUN_RECORD_MARTS
    data_marts = {t: n for t, n in differences.items() if t not in RUN_RECORD_MARTS}
    assert data_marts == dict.fromkeys(data_marts, 0)
    assert ledger.verify(res.control) == []


def test_ingest_skips_unchanged_files_until_a_full_rehash(home):
    settings, _held = home
    res = Resources(settings)
    runner.run(res, ("ingest",), trigger="test")
    # Alter a landed file in place, keeping its size and mtime: skipped by the stat check ...
    victim = sorted(Path(settings.landing_dir, "mes").glob("*.csv"))[0]
    stat = victim.stat()
    data = bytearray(victim.read_bytes())
    data[-2] = ord("7") if data[-2] != ord("7") else ord("8")
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    quiet = runner.run(res, ("ingest",), trigger="test")
    assert quiet.files["landed"] == 0

    # ... and caught by the periodic full re-hash, which is recorded in the ledger and in file_checks.
    due = Resources(settings.model_copy(update={"rehash_interval_days": 0}))
    rehash = runner.run(due, ("ingest",), trigger="test")
    assert rehash.files["landed"] == 1
    assert [i["file"] for i in rehash._inputs] == [str(victim.resolve())]
    run_id, note = ledger.last_note(res.control, "ingest")
    assert run_id == rehash.run_id and note["full_rehash"] and note["files_hashed"] == rehash.files["unchanged"] + 1
    assert control.last_full_rehash(res.control) is not None


def test_revalidation_takes_a_file_out_of_the_marts_and_back(home, monkeypatch):
    """After a registry change, `lakehouse revalidate` decides a file again and the marts follow the new verdict."""
    from pipelines.validate import expectations

    settings, _held = home
    res = Resources(settings)
    reactor = sorted(Path(settings.landing_dir, "bioreactor").glob("*.csv"))[0]
    instrument, batch = reactor.name.split("_")[:2]

    def batch_hours() -> int:
        with res.duckdb(read_only=True) as con:
            return con.execute(
                "select count(*) from marts.marts.bioreactor_hourly where batch_id = ?", [batch]
            ).fetchone()[0]

    def again() -> runner.RunSummary:
        targets = control.revalidation_targets(res.control, names=[reactor.name])
        summary = runner.run(res, ("validate", "transform", "publish"), "test:revalidate", revalidate=targets)
        assert summary.status == "succeeded", summary.error
        return summary

    before = batch_hours()
    assert before > 0
    registry = expectations.equipment_ids()
    monkeypatch.setattr(expectations, "equipment_ids", lambda: registry - {instrument})  # instrument withdrawn
    out = again()
    assert out._notes["revalidated"] == [
        {"file": reactor.name, "sha256": out._verdicts[0]["sha256"], "from": "accepted", "to": "quarantined"}
    ]
    assert batch_hours() == 0
    monkeypatch.undo()  # registered again
    back = again()
    assert back._notes["revalidated"][0]["to"] == "accepted"
    assert batch_hours() == before
    assert ledger.verify(res.control) == []
