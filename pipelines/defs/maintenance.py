"""Housekeeping as an asset: DuckLake snapshot expiry and file cleanup (``pipelines.maintenance``).

In ``pipeline_job`` (nightly and sensor runs) without a dependency on the dbt assets: expiry is by age and takes the
writer lock, so its place in the run does not matter, and a dependency would have Dagster skip it whenever the
incremental transform rebuilt only some models (a skipped upstream output skips the downstream step).
"""

import dagster as dg

from pipelines import runner
from pipelines.defs.resources import DUCKDB_WRITER_POOL, TRANSIENT_RETRY, LakehouseResource


@dg.asset(
    key="ducklake_maintenance",
    group_name="maintenance",
    pool=DUCKDB_WRITER_POOL,
    retry_policy=TRANSIENT_RETRY,
    description="Curated snapshots older than LAKEHOUSE_SNAPSHOT_RETENTION_DAYS expired, unreferenced files deleted.",
    kinds={"duckdb"},
)
def ducklake_maintenance(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    summary = lakehouse.run_stages(context, (runner.MAINTAIN,))
    done = summary._results[runner.MAINTAIN]
    return dg.MaterializeResult(metadata={**done, "ledger_run_id": summary.run_id})
