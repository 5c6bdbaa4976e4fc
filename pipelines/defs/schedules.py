"""Jobs and the nightly schedule."""

from __future__ import annotations

import dagster as dg

# Runs tagged with this key write the DuckDB work database, the DuckLake catalog and the marts: the instance admits
# one such run at a time (`concurrency.runs.tag_concurrency_limits` in dagster.yaml; others wait in the queue).
WRITES_TAG = {"lakehouse/writes": "duckdb"}

pipeline_job = dg.define_asset_job(
    "pipeline_job",
    selection=dg.AssetSelection.all(),
    tags=WRITES_TAG,
    description="Everything: land and validate what is waiting, rebuild curated tables and marts.",
)

nightly = dg.ScheduleDefinition(
    name="nightly",
    job=pipeline_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="02:00 UTC every night: the catch-all behind the new_landing_files sensor.",
)
