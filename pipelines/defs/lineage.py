"""The parent ``lakehouse.run`` lineage run of every Dagster-started run (the CLI emits its own in ``runner.run``).

The asset steps emit their child jobs (``lakehouse.ingest``, ``lakehouse.dbt.<model>`` ...) with the Dagster run id
as parent; these run-status sensors add the parent's START when the run starts and COMPLETE/FAIL when it ends,
stamped with the run's own start/end times from the instance, so lineage joins up as for a CLI run.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from pipelines import lineage
from pipelines.defs.resources import LakehouseResource

INTERVAL = 5  # seconds between evaluations of each run-status sensor (the daemon's loop bounds it from below)


def _emit(context: dg.RunStatusSensorContext, lakehouse: LakehouseResource, state: lineage.RunState) -> None:
    run = context.dagster_run
    record = context.instance.get_run_record_by_id(run.run_id)
    stamp = (record.start_time if state == lineage.RunState.START else record.end_time) if record else None
    error = None
    if state == lineage.RunState.FAIL:
        error = f"Dagster run {run.run_id} {run.status.value.lower()}"
    ol = lakehouse.resources().lineage()
    ol.emit(
        state,
        lineage.PARENT_JOB,
        run.run_id,
        event_time=datetime.fromtimestamp(stamp, UTC) if stamp else None,
        error=error,
        job_type="JOB",
    )
    if ol.errors:
        context.log.warning(ol.errors[0])


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.STARTED,
    name="lineage_run_start",
    minimum_interval_seconds=INTERVAL,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def lineage_run_start(context: dg.RunStatusSensorContext, lakehouse: LakehouseResource):
    _emit(context, lakehouse, lineage.RunState.START)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name="lineage_run_complete",
    minimum_interval_seconds=INTERVAL,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def lineage_run_complete(context: dg.RunStatusSensorContext, lakehouse: LakehouseResource):
    _emit(context, lakehouse, lineage.RunState.COMPLETE)


@dg.run_failure_sensor(
    name="lineage_run_fail",
    minimum_interval_seconds=INTERVAL,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def lineage_run_fail(context: dg.RunFailureSensorContext, lakehouse: LakehouseResource):
    _emit(context, lakehouse, lineage.RunState.FAIL)


SENSORS = [lineage_run_start, lineage_run_complete, lineage_run_fail]
