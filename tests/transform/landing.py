"""Landing Parquet the way ingest writes it (pipelines/sources.py columns + LINEAGE_COLUMNS), for dbt tests.

``write_feed`` writes one "accepted file" of a feed as ``LAKE/landing/<feed>/<sha256>.parquet`` and
``write_schema_files`` the zero-row ``_schema.parquet`` every feed directory holds. Types come from the registry,
so the fixtures cannot drift from the data contract.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.sources import FEEDS, FEEDS_BY_NAME, LINEAGE_COLUMNS


def _columns(feed_name: str):
    return (*FEEDS_BY_NAME[feed_name].columns, *LINEAGE_COLUMNS)


def write_schema_files(lake_dir: Path) -> None:
    for feed in FEEDS:
        write_rows(lake_dir, feed.name, [], file_name="_schema.parquet")


def write_rows(
    lake_dir: Path,
    feed_name: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    file_name: str | None = None,
    ingested_at: datetime | None = None,
    ingest_run_id: str = "ingest-run-1",
) -> Path:
    """Write rows (dicts keyed by registry column names) with lineage columns filled in; returns the file."""
    rows = list(rows)
    cols = _columns(feed_name)
    payload = repr((feed_name, rows, str(ingested_at))).encode()
    sha = hashlib.sha256(payload).hexdigest()
    source_file = f"{feed_name}_{sha[:8]}.src"
    ingested_at = ingested_at or datetime(2026, 6, 1, tzinfo=UTC)
    records = []
    for i, row in enumerate(rows, start=1):
        unknown = set(row) - {c.name for c in cols}
        if unknown:
            raise KeyError(f"{feed_name}: unknown columns {sorted(unknown)}")
        lineage = {
            "_source_sha256": sha,
            "_source_file": source_file,
            "_source_row": i,
            "_ingest_run_id": ingest_run_id,
            "_ingested_at": ingested_at,
            "_dq_flags": None,
        }
        records.append(tuple({**lineage, **row}.get(c.name) for c in cols))
    out_dir = lake_dir / "landing" / feed_name
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (file_name or f"{sha}.parquet")
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        ddl = ", ".join(f'"{c.name}" {c.type}' for c in cols)
        con.execute(f"CREATE TABLE t ({ddl})")
        if records:
            con.executemany(f"INSERT INTO t VALUES ({', '.join('?' for _ in cols)})", records)
        con.execute(f"COPY t TO '{path}' (FORMAT parquet, COMPRESSION zstd)")
    finally:
        con.close()
    return path


def write_query(lake_dir: Path, feed_name: str, select_sql: str, *, ingested_at: datetime | None = None) -> Path:
    """Write the rows of a DuckDB query (registry columns) as one landing file: for large synthetic feeds."""
    cols = _columns(feed_name)
    sha = hashlib.sha256(f"{feed_name}:{select_sql}".encode()).hexdigest()
    ingested_at = ingested_at or datetime(2026, 6, 1, tzinfo=UTC)
    feed_cols = ", ".join(f'cast("{c.name}" as {c.type}) as "{c.name}"' for c in FEEDS_BY_NAME[feed_name].columns)
    out_dir = lake_dir / "landing" / feed_name
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{sha}.parquet"
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            f"""COPY (
                select {feed_cols},
                    '{sha}' as _source_sha256, '{feed_name}_{sha[:8]}.src' as _source_file,
                    row_number() over () as _source_row, 'ingest-run-1' as _ingest_run_id,
                    '{ingested_at.isoformat()}'::timestamptz as _ingested_at, null::varchar as _dq_flags
                from ({select_sql})
            ) TO '{path}' (FORMAT parquet, COMPRESSION zstd)"""
        )
        assert [c[0] for c in con.execute(f"describe select * from '{path}'").fetchall()] == [c.name for c in cols]
    finally:
        con.close()
    return path
