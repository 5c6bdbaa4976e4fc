"""The Dagster code location (``dagster dev -m pipelines.definitions``; the dagster role points its workspace here).

Assets: ``raw_files`` (ingest) -> ``landing/<feed>`` (validation, GE checks) -> every dbt seed and model (dbt tests
as checks; marts are the ``dbt_marts`` group). The ``new_landing_files`` sensor lands new files within a minute,
the ``nightly`` schedule runs everything at 02:00 UTC. See docs/orchestration.md.
"""

from __future__ import annotations

import dagster as dg

from pipelines.defs import dbt, ingest, schedules
from pipelines.defs.resources import LakehouseResource


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[ingest.raw_files, ingest.landing, dbt.dbt_models],
        jobs=[ingest.ingest_job, schedules.nightly_job],
        sensors=[ingest.new_landing_files],
        schedules=[schedules.nightly],
        resources={"lakehouse": LakehouseResource()},
    )
