"""Ingest and validation assets, the GE asset checks, and the sensor that picks up newly landed files."""

import hashlib
import json

import dagster as dg

from pipelines import landing as landing_location
from pipelines.defs.resources import TRANSIENT_RETRY, LakehouseResource
from pipelines.defs.schedules import WRITES_TAG, pipeline_job
from pipelines.sources import FEEDS

GROUP = "ingest"
RAW_FILES = dg.AssetKey("raw_files")


def landing_key(feed: str) -> dg.AssetKey:
    return dg.AssetKey(["landing", feed])


class IngestConfig(dg.Config):
    paths: list[str] = []  # files (paths or s3:// URIs) to land; empty = everything in the landing location


@dg.asset(
    key=RAW_FILES,
    group_name=GROUP,
    retry_policy=TRANSIENT_RETRY,
    description="Landed files copied byte-for-byte into the raw zone under their SHA-256 (ingest manifest).",
    kinds={"python"},
)
def raw_files(context: dg.AssetExecutionContext, config: IngestConfig, lakehouse: LakehouseResource):
    # The sensor's files (paths or s3:// URIs of a landing bucket); none = everything settled in the landing location.
    paths = landing_location.fetch(lakehouse.resources(), config.paths) if config.paths else None
    summary = lakehouse.run_stages(context, ("ingest",), paths=paths)
    return dg.MaterializeResult(
        metadata={
            "files_landed": summary.files["landed"],
            "files_duplicate": summary.files["duplicate"],
            "ledger_run_id": summary.run_id,
        }
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            landing_key(f.name),
            deps=[RAW_FILES],
            group_name=GROUP,
            description=f"Validated landing Parquet of {f.name}: {f.description}",
            kinds={"parquet"},
        )
        for f in FEEDS
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "great_expectations",
            asset=landing_key(f.name),
            description="Every file of this feed validated in the run was accepted by its GE suite.",
        )
        for f in FEEDS
    ],
    retry_policy=TRANSIENT_RETRY,
)
def landing(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    """validate_pending over every raw file without an outcome; one GE check result per feed."""
    summary = lakehouse.run_stages(context, ("validate",))
    by_feed: dict[str, list[dict]] = {}
    for v in summary._verdicts:
        by_feed.setdefault(v.get("feed") or "_unknown", []).append(v)
    for feed in FEEDS:
        verdicts = by_feed.get(feed.name, [])
        quarantined = [v for v in verdicts if v["outcome"] == "quarantined"]
        yield dg.MaterializeResult(
            asset_key=landing_key(feed.name),
            metadata={
                "files_validated": len(verdicts),
                "rows_accepted": summary.rows_per_landing.get(feed.name, 0),
            },
        )
        yield dg.AssetCheckResult(
            asset_key=landing_key(feed.name),
            check_name="great_expectations",
            passed=not quarantined and not any(v.get("rows_rejected") for v in verdicts),
            severity=dg.AssetCheckSeverity.WARN,  # quarantine is the designed outcome, not a pipeline failure
            metadata={
                "files": len(verdicts),
                "quarantined": dg.MetadataValue.json([{"file": v["file"], "reason": v["reason"]} for v in quarantined]),
                "rows_rejected": sum(int(v.get("rows_rejected") or 0) for v in verdicts),
            },
        )


ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(RAW_FILES) | dg.AssetSelection.key_prefixes("landing"),
    tags=WRITES_TAG,
    executor_def=dg.in_process_executor,
    description="Land and validate new files only (marts wait for the next pipeline run).",
)


@dg.sensor(job=pipeline_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
def new_landing_files(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
    """Every 15 s: files that appeared (or changed) in the landing location (directory or bucket/prefix) since the
    last tick → one run of ``pipeline_job``: they are landed, validated, transformed and published to the marts.

    A file changed within ``landing_settle_seconds`` waits for the next tick. The cursor holds what was seen, so a
    file is requested once; the run key makes a repeated request a no-op, and runs wait in the instance queue
    (one writing run at a time) rather than being dropped.
    """
    seen: dict[str, list[int]] = json.loads(context.cursor) if context.cursor else {}
    now = landing_location.scan(lakehouse.resources())
    new = sorted(p for p, stat in now.items() if seen.get(p) != stat)
    if not new:
        return dg.SkipReason("no new files in the landing location")
    context.update_cursor(json.dumps(now))
    return dg.RunRequest(
        run_key="landing:" + hashlib.sha256(json.dumps({p: now[p] for p in new}).encode()).hexdigest()[:16],
        run_config=dg.RunConfig(ops={"raw_files": IngestConfig(paths=new)}),
        tags={"lakehouse/trigger": "new-files"},
    )
