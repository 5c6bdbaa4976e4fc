"""Housekeeping of the curated DuckLake: expire old snapshots, then delete the data files nobody references.

Every curated write is a DuckLake snapshot that keeps the previous table version reachable (time travel). Kept
forever, the superseded Parquet files of every rebuild pile up. ``expire_snapshots`` drops the snapshots older
than ``LAKEHOUSE_SNAPSHOT_RETENTION_DAYS`` (the newest snapshot always stays) and deletes the data files that
only they referenced. It runs as the ``maintain`` stage of a run (``lakehouse maintain``; Dagster's nightly job),
so what it removed is recorded in the run ledger. Time travel within the retention period is untouched.

Deleting right after expiry is safe here: the only DuckLake readers are pipeline runs, and the stage holds the
DuckDB writer lock they all take. The raw zone and the landing Parquet are not touched (they are the record).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pipelines import control
from pipelines.resources import Resources


def expire_snapshots(res: Resources) -> dict[str, Any]:
    """Expire snapshots older than the retention, delete unreferenced files; returns what was done."""
    days = res.settings.snapshot_retention_days
    cutoff = control.utcnow() - timedelta(days=days)
    with res.duckdb(marts=False) as con:
        before = con.execute("select count(*) from ducklake_snapshots('lake')").fetchone()[0]
        expired = con.execute(
            "CALL ducklake_expire_snapshots('lake', older_than => ?::timestamptz)", [cutoff.isoformat()]
        ).fetchall()
        deleted = con.execute("CALL ducklake_cleanup_old_files('lake', cleanup_all => true)").fetchall()
    return {
        "retention_days": days,
        "older_than": control.iso(cutoff),
        "snapshots_before": int(before),
        "snapshots_expired": len(expired),
        "files_deleted": len(deleted),
    }
