"""Jobs and the nightly schedule."""

from __future__ import annotations

import dagster as dg

nightly_job = dg.define_asset_job(
    "nightly_job",
    selection=dg.AssetSelection.all(),
    description="Everything: land and validate what is waiting, rebuild curated tables and marts.",
)

nightly = dg.ScheduleDefinition(
    name="nightly",
    job=nightly_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="02:00 UTC every night.",
)
