"""The Dagster code location (``dagster dev -m pipelines.definitions``; the dagster role points its workspace here).

Assets: ``raw_files`` (ingest) -> ``landing/<feed>`` (validation, GE checks) -> every dbt seed and model (dbt tests
as checks; marts are the ``dbt_marts`` group; the same step then builds the serving layer), and
``ducklake_maintenance`` (snapshot expiry). The ``new_landing_files`` sensor takes new files through to the marts
within a minute or two (only what they change: ADR 0141), the ``nightly`` schedule is the catch-all at 02:00 UTC;
run-status sensors emit the parent ``lakehouse.run`` lineage events.
See docs/orchestration.md.
"""

from __future__ import annotations

import dagster as dg

from pipelines.defs import dbt, ingest, lineage, maintenance, schedules
from pipelines.defs.resources import LakehouseResource


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[ingest.raw_files, ingest.landing, dbt.dbt_models, maintenance.ducklake_maintenance],
        jobs=[ingest.ingest_job, schedules.pipeline_job],
        sensors=[ingest.new_landing_files, *lineage.SENSORS],
        schedules=[schedules.nightly],
        resources={"lakehouse": LakehouseResource()},
    )
