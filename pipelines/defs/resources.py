"""The one resource every asset uses: runs pipeline stages through ``pipelines.runner`` (the CLI's code path).

It wraps the same :class:`pipelines.resources.Resources` object a CLI run builds (stores, S3 client, control
engine, lineage transport), one per settings for the life of the code server, so every run reuses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

from pipelines import runner
from pipelines.resources import Resources
from pipelines.settings import Settings

# Transient failures (pipelines.runner.is_transient: by exception type) are retried; data and code errors (a
# failed dbt model or test, a bad suite) fail at once — retrying cannot fix them.
TRANSIENT_RETRY = dg.RetryPolicy(max_retries=3, delay=20, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
DUCKDB_WRITER_POOL = "duckdb_writer"  # limit 1 in dagster.yaml: one DuckDB writer at a time


def trigger_of(context: dg.AssetExecutionContext) -> str:
    """How Dagster started this run, for the ledger: schedule, sensor, backfill or a person (UI/CLI)."""
    tags = context.run.tags
    for tag, label in (("dagster/schedule_name", "schedule"), ("dagster/sensor_name", "sensor")):
        if tag in tags:
            return f"dagster:{label}:{tags[tag]}"
    if "dagster/backfill" in tags:
        return "dagster:backfill"
    user = tags.get("dagster/user") or tags.get("user")
    return f"dagster:manual:{user}" if user else "dagster:manual"


_BUILT: dict[str | None, Resources] = {}  # home override -> the resources built for it (one per process)


class LakehouseResource(dg.ConfigurableResource):
    """Settings come from LAKEHOUSE_* (the env file the dagster role renders); ``home`` overrides for tests."""

    home: str | None = None

    def resources(self) -> Resources:
        """The pipeline's resources, built once per process from the settings and reused by every run."""
        if self.home not in _BUILT:
            _BUILT[self.home] = Resources(Settings(home=self.home) if self.home else Settings())
        return _BUILT[self.home]

    def settings(self) -> Settings:
        return self.resources().settings

    def run_stages(
        self, context: dg.AssetExecutionContext, stages: Sequence[str], *, check: bool = True, **kw: Any
    ) -> runner.RunSummary:
        """Run ``stages`` under this Dagster run's id; raise so Dagster retries only transient failures.

        ``check=False`` returns a failed summary too: the caller reports what it can, then calls ``raise_for``."""
        summary = runner.run(
            self.resources(), stages, trigger_of(context), run_id=context.run.run_id, own_parent=False, **kw
        )
        context.log.info(
            f"{','.join(stages)}: {summary.status} in {sum(summary.stage_seconds.values()):.1f}s "
            f"(files {summary.files}, lineage events {summary.lineage_events})"
        )
        if check:
            raise_for(summary)
        return summary


def raise_for(summary: runner.RunSummary) -> None:
    """Nothing if the run succeeded; else the exception that makes Dagster retry (transient) or fail at once."""
    if summary.status == "succeeded":
        return
    if summary.transient:
        raise runner.RunError(summary.error)  # RetryPolicy applies
    raise dg.Failure(description=summary.error, allow_retries=False)
