"""Jobs and the nightly schedule."""

from __future__ import annotations

import dagster as dg

# Runs tagged with this key write the DuckDB work database, the DuckLake catalog and the marts: the instance admits
# one such run at a time (`concurrency.runs.tag_concurrency_limits` in dagster.yaml; others wait in the queue).
WRITES_TAG = {"lakehouse/writes": "duckdb"}

# Steps of a run execute one after another in the run worker's process (they are sequential anyway: one DuckDB
# writer): a subprocess per step would import Dagster, dbt and the code location again for each of the six
# steps, most of the landed-file-to-mart latency on a loaded host (ADR 0093). Op retries still apply.
pipeline_job = dg.define_asset_job(
    "pipeline_job",
    selection=dg.AssetSelection.all(),
    tags=WRITES_TAG,
    executor_def=dg.in_process_executor,
    description="Everything: land and validate what is new, build what it changes (curated, marts, serving layer),"
    " then the DuckLake housekeeping.",
)

nightly = dg.ScheduleDefinition(
    name="nightly",
    job=pipeline_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="02:00 UTC every night: the catch-all behind the new_landing_files sensor.",
)
