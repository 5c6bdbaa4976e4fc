"""Write-audit-publish (ADR 0160): a build whose tests fail publishes nothing and leaves the previous marts and
curated tables readable and unchanged; the next passing build publishes. Embedded marts (DuckDB file) and
PostgreSQL marts (real server), each on its own lake."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pipelines import duck
from pipelines.settings import Settings
from pipelines.transform import build
from tests.transform.dataset import write_dataset
from tests.transform.landing import write_rows

FAILING_TEST = "not_null_batches_coi_id"


def _marts_rows(settings: Settings, table: str, columns: str = "*") -> list[tuple]:
    sql = f'select {columns} from "{settings.marts_schema}"."{table}"'
    if settings.marts_backend == "postgres":
        with psycopg.connect(settings.marts_pg_dsn.get_secret_value()) as conn:
            rows = [tuple(r) for r in conn.execute(sql)]
    else:
        conn = duck.connect(settings, lake=False, read_only=True)
        try:
            rows = conn.execute(sql.replace("from ", f"from {duck.MARTS_ALIAS}.", 1)).fetchall()
        finally:
            conn.close()
    return sorted(rows, key=repr)


def _curated(settings: Settings, sql: str) -> list[tuple]:
    conn = duck.connect(settings, marts=False, read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _bad_batch(lake_dir: Path) -> Path:
    """A batches landing file with a row that breaks a curated key test (coi_id not null)."""
    return write_rows(
        lake_dir,
        "mes__batches",
        [dict(batch_id="B-WAP-BAD", coi_id=None, din=None, product_code="CT-019", disposition="in_process")],
        file_name="wap-bad.parquet",
    )


def _wap_cycle(settings: Settings, *, recover: bool = True) -> None:
    lake = Path(settings.lake_dir)
    write_dataset(lake)
    first = build(settings, run_id="run-wap-1")
    assert first.success, first.error
    assert "batch_overview" in first.published and "pipeline_runs" in first.published
    overview = _marts_rows(settings, "batch_overview")
    spc = _marts_rows(settings, "spc_points")
    assert overview and _marts_rows(settings, "batch_overview", "distinct _run_id") == [("run-wap-1",)]

    bad = _bad_batch(lake)
    second = build(settings, run_id="run-wap-2")
    assert not second.success
    assert FAILING_TEST in (second.error or ""), second.error
    assert second.published == []
    assert "batches" in second.restored
    assert [t.name for t in second.failed_tests] == [FAILING_TEST]
    # The previous marts: still readable, row for row the same, written by the first run.
    assert _marts_rows(settings, "batch_overview") == overview
    assert _marts_rows(settings, "spc_points") == spc
    # The curated table is back at the state the first run published (the bad row is not visible).
    assert _curated(settings, "select count(*) from lake.curated.batches where batch_id = 'B-WAP-BAD'") == [(0,)]
    assert _curated(settings, "select distinct _run_id from lake.curated.batches") == [("run-wap-1",)]

    if not recover:
        return
    bad.unlink()
    third = build(settings, run_id="run-wap-3")
    assert third.success, third.error
    assert "batch_overview" in third.published
    assert _marts_rows(settings, "batch_overview", "distinct _run_id") == [("run-wap-3",)]


def test_failed_tests_publish_nothing_embedded(tmp_path):
    _wap_cycle(Settings(home=tmp_path))


@pytest.mark.postgres
def test_failed_tests_publish_nothing_postgres_marts(tmp_path, postgres_server):
    settings = Settings(
        home=tmp_path, marts_backend="postgres", marts_pg_dsn=postgres_server.create_database("wap_marts")
    )
    _wap_cycle(settings, recover=False)  # recovery is the same code path as embedded
