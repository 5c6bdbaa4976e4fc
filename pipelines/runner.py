"""One pipeline run: the stages in order, with the run ledger, lineage and a summary.

``run()`` is what the CLI (``lakehouse run`` / ``demo`` / ``ingest``) and the Dagster assets call. The stage
work itself lives with its owners — ``pipelines.ingest.land``, ``pipelines.validate.validate_pending``,
``pipelines.transform.build`` (which publishes the marts) — this module only sequences them, times them, records them in
the ledger and emits their lineage. Each stage is also callable on its own (``stage_ingest`` ...) so a Dagster
asset runs exactly the same code as the CLI.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines import ledger, lineage, locks
from pipelines.resources import Resources
from pipelines.settings import Settings

STAGES: tuple[str, ...] = ("ingest", "validate", "transform", "publish")
# Not part of a default run: the nightly housekeeping (DuckLake snapshot expiry and file cleanup).
MAINTAIN = "maintain"
ALL_STAGES: tuple[str, ...] = (*STAGES, MAINTAIN)
LOCK_WAIT_SECONDS = 30 * 60
# landed = new manifest rows; each ends accepted, quarantined or duplicate. unchanged = re-scanned, same path and
# bytes as before (nothing written); failed = could not be read (stays in the landing directory, reported).
OUTCOME_COUNTS = ("landed", "accepted", "quarantined", "duplicate", "unchanged", "failed")

Progress = Callable[[str, int, int], None]  # (what, done, total)


class RunError(RuntimeError):
    """A run could not start or a stage failed (one-line message; the ledger records the failure)."""


class WriterBusy(RunError):
    """Another process holds the DuckDB writer lock past the wait: transient, worth retrying later."""


log = logging.getLogger(__name__)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the exception (or one it was raised from) is of a type that means the system was busy or
    unreachable for a moment: a lock held by another writer, a dropped or refused connection, a timeout. Data
    and code errors (a failed dbt test, a bad suite, a missing file) are not: retrying cannot fix them."""
    import duckdb
    import sqlalchemy as sa

    transient: list[type[BaseException]] = [
        WriterBusy,
        locks.Busy,
        ConnectionError,
        TimeoutError,
        sa.exc.OperationalError,
        duckdb.ConnectionException,
    ]
    try:
        import psycopg
        from botocore.exceptions import ConnectionError as BotoConnectionError

        transient += [psycopg.OperationalError, BotoConnectionError]
    except ImportError:  # pragma: no cover - both are dependencies of the package
        pass
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, tuple(transient)):
            return True
        # DuckDB reports a file locked by another process as an IOException: only that one is transient.
        if isinstance(current, duckdb.IOException) and "could not set lock" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


@dataclass
class RunSummary:
    """What one run did; ``lakehouse demo`` writes it as ``HOME/demo/summary.json``."""

    run_id: str
    trigger: str
    status: str = "running"  # succeeded | failed
    started_at: str = ""
    ended_at: str = ""
    stages: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOME_COUNTS, 0))
    quarantined: list[dict[str, str]] = field(default_factory=list)  # {"file", "reason"}
    failed: list[dict[str, str]] = field(default_factory=list)  # {"file", "reason"}: could not be read
    rows_per_landing: dict[str, int] = field(default_factory=dict)  # feed -> accepted rows this run
    rows_rejected: int = 0
    curated_tables: dict[str, int] = field(default_factory=dict)
    mart_tables: dict[str, int] = field(default_factory=dict)
    serving_views: list[str] = field(default_factory=list)  # BI views the serving layer (re)built in the marts DB
    dbt_layer_seconds: dict[str, float] = field(default_factory=dict)  # seed/staging/.../marts: sum of models
    dbt_tests: dict[str, int] = field(default_factory=dict)  # pass / fail / warn / error / skipped counts
    lineage_events: int = 0
    lineage_undelivered: int = 0
    transform_skipped: str | None = None  # why transform had nothing to do (nothing new since a run)
    error: str | None = None
    transient: bool = False  # the error is of a type worth retrying (is_transient): Dagster's RetryPolicy applies
    # Ledger material, not printed in the summary.
    _inputs: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _verdicts: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _results: dict[str, Any] = field(default_factory=dict, repr=False)  # stage -> its owner's result object
    _notes: dict[str, Any] = field(default_factory=dict, repr=False)  # ledger notes by topic (LedgerEntry.notes)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}

    def outputs(self) -> list[dict[str, Any]]:
        out = [{"dataset": f"landing.{feed}", "rows": n} for feed, n in sorted(self.rows_per_landing.items())]
        out += [{"dataset": f"curated.{t}", "rows": n} for t, n in sorted(self.curated_tables.items())]
        out += [{"dataset": f"marts.{t}", "rows": n} for t, n in sorted(self.mart_tables.items())]
        out += [{"dataset": f"marts.{v}", "kind": "view"} for v in sorted(self.serving_views)]
        return out


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(ts: datetime) -> str:
    return ts.isoformat(timespec="seconds").replace("+00:00", "Z")


@contextmanager
def duckdb_writer_lock(settings: Settings, wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Serialise the stages that write the DuckDB files (a DuckDB file takes one writing process at a time).

    Dagster already limits these assets to one at a time (pool ``duckdb_writer``); this lock also covers a CLI
    run started beside the daemon. It is an OS lock (flock): released when the process dies.
    """
    with locks.hold(settings, "duckdb-writer", wait_seconds, busy=WriterBusy):
        yield


def landing_files(settings: Settings | Resources) -> list[Path]:
    """Every settled landed file, as local files ingest can land, in a stable order (``pipelines.landing``).

    Settled: unchanged for ``landing_settle_seconds``; a file an instrument is still writing waits for the next
    scan (the sensor, the schedule and ``lakehouse run`` all scan the landing location through here). Objects in a
    landing bucket are fetched to local copies first.
    """
    from pipelines import landing

    res = Resources.of(settings)
    return landing.fetch(res, list(landing.scan(res)))


def settled(paths: Sequence[Path], settle_seconds: float, now: float | None = None) -> list[Path]:
    """The files of ``paths`` not modified in the last ``settle_seconds`` (vanished files are left out)."""
    horizon = (time.time() if now is None else now) - settle_seconds
    out = []
    for p in paths:
        try:
            if settle_seconds <= 0 or p.stat().st_mtime <= horizon:
                out.append(p)
        except FileNotFoundError:
            continue
    return out


# --- stages -----------------------------------------------------------------------------------------
# Each takes the summary to fill in and the lineage emitter; each runs its owner's function exactly once.


INGEST_CHUNK = 16  # files per land() call: lets the CLI show progress; each file is landed independently


def stage_ingest(
    res: Resources,
    summary: RunSummary,
    ol: lineage.Lineage,
    paths: Sequence[Path] | None = None,
    on_progress: Progress | None = None,
) -> list[Any]:
    from pipelines.ingest import full_rehash_due, land

    files = list(paths) if paths is not None else landing_files(res)
    # A full re-hash covers the whole landing directory, so only a run over all of it does one.
    full_rehash = paths is None and full_rehash_due(res)
    with ol.step("lakehouse.ingest", summary.run_id) as step:
        landed: list[Any] = []
        for start in range(0, len(files), INGEST_CHUNK):
            landed += land(res, files[start : start + INGEST_CHUNK], summary.run_id, full_rehash=full_rehash)
            if on_progress:
                on_progress("ingest", min(start + INGEST_CHUNK, len(files)), len(files))
        recorded = [f for f in landed if f.recorded and f.outcome != "failed"]
        step.inputs = [lineage.file_dataset(f.source_path) for f in recorded]
        step.outputs = [lineage.file_dataset(f.raw_uri) for f in recorded if f.outcome == "landed"]
    for f in landed:
        if f.outcome == "failed":
            summary.files["failed"] += 1
            summary.failed.append({"file": f.source_path, "reason": f.reason or "unreadable"})
        elif not f.recorded:
            summary.files["unchanged"] += 1  # same path, same bytes as before: nothing to do
        else:
            summary.files["landed"] += 1
            summary.files["duplicate"] += f.outcome == "duplicate"
            summary._inputs.append({"file": f.source_path, "sha256": f.sha256, "size": f.size, "raw": f.raw_uri})
    if full_rehash:
        hashed = sum(1 for f in landed if f.outcome != "failed")
        summary._notes["ingest"] = {"full_rehash": True, "files_hashed": hashed}
    return landed


def stage_validate(
    res: Resources, summary: RunSummary, ol: lineage.Lineage, revalidate: list[dict[str, Any]] | None = None
) -> list[Any]:
    """Validate the pending files, or with ``revalidate`` (``control.revalidation_targets``) those files again."""
    from pipelines import control

    if revalidate is None and not control.pending(res.control):
        return []  # nothing landed and unvalidated: no step, no lineage events (and no GE/pandas import)
    from pipelines import validate

    with ol.step("lakehouse.validate", summary.run_id) as step:
        if revalidate is None:
            verdicts = validate.validate_pending(res, summary.run_id)
        else:
            verdicts = validate.revalidate(res, summary.run_id, revalidate)
            previous = {t["seq"]: t["previous_outcome"] for t in revalidate}
            summary._notes["revalidated"] = [
                {"file": v.original_name, "sha256": v.sha256, "from": previous[v.manifest_seq], "to": v.outcome}
                for v in verdicts
            ]
        step.inputs = [lineage.file_dataset(v.raw_uri, assertions=v.assertions) for v in verdicts]
        step.outputs = lineage.landing_datasets(res.settings, verdicts)
    for v in verdicts:
        summary.files[v.outcome] += 1
        if v.outcome == "quarantined":
            summary.quarantined.append({"file": v.original_name, "reason": v.reason or v.reason_kind or "?"})
        elif v.feed:
            summary.rows_per_landing[v.feed] = summary.rows_per_landing.get(v.feed, 0) + v.rows_accepted
        summary.rows_rejected += v.rows_rejected
        summary._verdicts.append(
            {
                "file": v.original_name,
                "feed": v.feed,
                "sha256": v.sha256,
                "outcome": v.outcome,
                "reason": v.reason,
                "suite": v.suite,
                "rows_accepted": v.rows_accepted,
                "rows_flagged": v.rows_flagged,
                "rows_rejected": v.rows_rejected,
            }
        )
    return verdicts


def transform_state(res: Resources) -> dict[str, Any]:
    """What a transform's output depends on: the dbt project, code and settings (``config``, hashed), and the
    newest accepted file outcome (``accepted_seq``). Equal states give equal curated tables and marts."""
    import hashlib

    from pipelines import control
    from pipelines.transform.project import dbt_env, parse_fingerprint

    digest = hashlib.sha256(parse_fingerprint(res.settings).encode())
    digest.update(ledger.package_version().encode())
    digest.update(json.dumps(dbt_env(res.settings), sort_keys=True).encode())
    return {"config": digest.hexdigest(), "accepted_seq": control.max_accepted_seq(res.control)}


def plan_transform(res: Resources, select: str | None, full_refresh: bool) -> tuple[str | None, str | None]:
    """(dbt selector, reason to skip) for this run's transform; see docs/performance.md "Incremental runs".

    An explicit ``select`` or ``full_refresh`` is done as asked. Otherwise the last succeeded transform's state
    (ledger note) decides: the same state -> skip (nothing new); the same project, code and settings -> only
    the models downstream of feeds that got accepted files since (``source:<system>.<entity>+``); else all.
    """
    from pipelines import control
    from pipelines.sources import FEEDS_BY_NAME

    if select or full_refresh:
        return select, None
    last = ledger.last_note(res.control, "transform")
    if last is None:
        return None, None
    last_run, note = last
    state = transform_state(res)
    if note.get("state") == state:
        return None, f"nothing new since run {last_run}"
    if note.get("state", {}).get("config") != state["config"]:
        return None, None
    feeds = control.accepted_feeds_since(res.control, note["state"]["accepted_seq"])
    changed = [FEEDS_BY_NAME[f] for f in feeds if f in FEEDS_BY_NAME]
    sources = sorted(f"source:{feed.system}.{feed.entity}+" for feed in changed)
    return " ".join(sources) or None, None


def stage_transform(
    res: Resources,
    summary: RunSummary,
    ol: lineage.Lineage,
    select: str | None = None,
    full_refresh: bool = False,
) -> Any:
    """dbt build (seeds, staging, intermediate, curated, marts + tests), then write-audit-publish (ADR 0160):
    the marts are published only when every test passed; a failed build restores the curated tables.

    Incremental (ADR 0141): skipped when nothing was accepted since the last transform, narrowed to the models
    downstream of the feeds that changed; the big curated and mart models take only new landing files."""
    from pipelines import transform

    started = _now()
    with duckdb_writer_lock(res.settings):
        chosen, skip = plan_transform(res, select, full_refresh)
        if skip:
            summary.transform_skipped = skip
            summary._notes["transform"] = {"state": transform_state(res), "skipped": skip}
            return None
        state = transform_state(res)
        from pipelines.validate import ensure_schema_files

        ensure_schema_files(res)  # dbt reads every feed's landing glob: never an empty one
        result = transform.build(res, summary.run_id, select=chosen, full_refresh=full_refresh)
    _record_models(summary, ol, result, started)
    summary._results["transform"] = result  # also when it failed: Dagster reports the failed checks from it
    if not result.success:
        summary._notes["write_audit_publish"] = {"published": [], "restored": result.restored}
        raise RunError(f"dbt build failed, nothing published: {result.error}")
    if not select:  # the whole project is current as of `state` (an explicit selection may leave some stale)
        summary._notes["transform"] = {"state": state, "select": chosen, "full_refresh": full_refresh}
    return result


def stage_publish(res: Resources, summary: RunSummary, ol: lineage.Lineage) -> Any:
    """The serving layer in PostgreSQL marts (pipelines.serving: views, indexes, grants, tests). The marts
    themselves are published by the transform when its build passed (write-audit-publish, ADR 0160)."""
    if res.settings.marts_backend == "postgres":
        return stage_serve(res, summary, ol)
    return None


def stage_serve(res: Resources, summary: RunSummary, ol: lineage.Lineage) -> Any:
    """The serving layer inside the PostgreSQL marts database, after publication (ADR 0111)."""
    from pipelines import serving

    started = _now()
    result = serving.build(res.settings, summary.run_id)
    _record_models(summary, ol, result, started)
    if not result.success:
        raise RunError(f"serving layer failed: {result.error}")
    return result


def stage_maintain(res: Resources, summary: RunSummary, ol: lineage.Lineage) -> dict[str, Any]:
    """Expire curated snapshots past the retention and delete unreferenced files (pipelines.maintenance)."""
    from pipelines.maintenance import expire_snapshots

    with ol.step("lakehouse.maintain", summary.run_id), duckdb_writer_lock(res.settings):
        done = expire_snapshots(res)
    summary._notes["maintenance"] = done
    return done


def _record_models(summary: RunSummary, ol: lineage.Lineage, result: Any, started: datetime) -> None:
    """Row counts and timings into the summary, and START + COMPLETE/FAIL per dbt model as dbt reported it.

    dbt reports each model's duration, not its start, so the events are placed back to back from the stage start
    in dbt's execution order (exact with one dbt thread, the profile's setting).
    """
    clock = started
    for m in result.models:
        if m.status == "skipped":
            continue
        if m.rows is not None and m.layer == "curated":
            summary.curated_tables[m.name] = int(m.rows)
        elif m.rows is not None and m.layer == "marts":
            summary.mart_tables[m.name] = int(m.rows)
        elif m.layer == "serving" and m.status == "success":
            summary.serving_views.append(m.name)
        summary.dbt_layer_seconds[m.layer] = round(summary.dbt_layer_seconds.get(m.layer, 0.0) + m.duration_s, 2)
        ended = clock + timedelta(seconds=m.duration_s)
        job = {"marts": "lakehouse.publish_marts.", "serving": "lakehouse.serving."}.get(m.layer, "lakehouse.dbt.")
        ol.completed_step(
            job + m.name,
            summary.run_id,
            started_at=clock,
            ended_at=ended,
            inputs=[lineage.DatasetRef(d.namespace, d.name) for d in m.inputs],
            outputs=[lineage.DatasetRef(m.output.namespace, m.output.name, rows=m.rows)],
            error=None if m.status == "success" else (m.message or m.status),
            job_type="SEED" if m.layer == "seed" else "MODEL",
        )
        clock = ended
    for t in result.tests:
        summary.dbt_tests[t.status] = summary.dbt_tests.get(t.status, 0) + 1


# --- the run ----------------------------------------------------------------------------------------


def run(
    settings: Settings | Resources,
    stages: Sequence[str] = STAGES,
    trigger: str = "cli",
    *,
    paths: Sequence[Path] | None = None,
    select: str | None = None,
    full_refresh: bool = False,
    revalidate: list[dict[str, Any]] | None = None,
    run_id: str | None = None,
    own_parent: bool = True,
    on_stage: Callable[[str, str], None] | None = None,
    on_progress: Progress | None = None,
) -> RunSummary:
    """Run ``stages`` in pipeline order; returns the summary (``status`` failed + ``error`` if a stage raised).

    ``settings`` may be the caller's :class:`Resources` (a Dagster code server keeps one); else one is built for
    this run and passed to every stage. ``paths`` limits ingest to these files (default: everything under the
    landing directory); ``select`` is a dbt selector for transform; ``full_refresh`` rebuilds every curated
    table and mart from all landing files instead of only what is new. ``revalidate`` (manifest rows from
    ``control.revalidation_targets``) makes the validate stage decide those files again; the transform then rebuilds
    in full, since landing files may have been replaced or removed. ``on_stage(stage, "start"|"done"|
    "failed")`` and ``on_progress(stage, done, total)`` let the CLI show progress.
    ``own_parent=False`` when the caller runs several ``run()`` calls under one run id (a Dagster run: one call
    per step): the steps' lineage events then point at that run id without a START/COMPLETE of their own.
    """
    unknown = [s for s in stages if s not in ALL_STAGES]
    if unknown:
        raise RunError(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(ALL_STAGES)}")
    ordered = [s for s in ALL_STAGES if s in stages]
    res = Resources.of(settings)
    settings = res.settings
    Path(settings.home).mkdir(parents=True, exist_ok=True)
    started = _now()
    summary = RunSummary(
        run_id=run_id or lineage.new_run_id(), trigger=trigger, started_at=_iso(started), stages=ordered
    )
    engine = res.control
    entry = ledger.LedgerEntry(
        run_id=summary.run_id,
        trigger=trigger,
        who=ledger.who(),
        started_at=started,
        stages=tuple(ordered),
        package_version=ledger.package_version(),
        git_commit=ledger.git_commit(),
    )
    ledger.append(engine, entry)
    closed = ledger.close_abandoned(engine, summary.run_id)  # runs whose process died before their end row
    if closed:
        summary._notes["abandoned_closed"] = closed
    ol = res.lineage()
    if own_parent:
        ol.emit(lineage.RunState.START, lineage.PARENT_JOB, summary.run_id, job_type="JOB")

    stage_fns: dict[str, Callable[[], Any]] = {
        "ingest": lambda: stage_ingest(res, summary, ol, paths, on_progress),
        "validate": lambda: stage_validate(res, summary, ol, revalidate),
        "transform": lambda: stage_transform(res, summary, ol, select, full_refresh or revalidate is not None),
        "publish": lambda: stage_publish(res, summary, ol),
        MAINTAIN: lambda: stage_maintain(res, summary, ol),
    }
    current = ""
    try:
        for current in ordered:
            if on_stage:
                on_stage(current, "start")
            t0 = time.perf_counter()
            summary._results[current] = stage_fns[current]()
            summary.stage_seconds[current] = round(time.perf_counter() - t0, 2)
            if on_stage:
                on_stage(current, "done")
        summary.status = "succeeded"
    except Exception as exc:  # noqa: BLE001 - recorded in the ledger and summary, reported by the caller
        summary.status = "failed"
        summary.error = f"{current}: {_one_line(exc)}"
        summary.transient = is_transient(exc)
        log.debug("run %s failed in %s", summary.run_id, current, exc_info=True)  # the traceback: --debug
        if on_stage:
            on_stage(current, "failed")
    ended = _now()
    summary.ended_at = _iso(ended)
    if own_parent:
        ol.emit(
            lineage.RunState.COMPLETE if summary.status == "succeeded" else lineage.RunState.FAIL,
            lineage.PARENT_JOB,
            summary.run_id,
            error=summary.error,
            job_type="JOB",
        )
    summary.lineage_events = ol.emitted
    summary.lineage_undelivered = ol.undelivered
    entry.event = "succeeded" if summary.status == "succeeded" else "failed"
    entry.ended_at = ended
    entry.inputs = summary._inputs
    entry.outputs = summary.outputs()
    entry.verdicts = summary._verdicts
    entry.error = summary.error
    entry.notes = summary._notes
    ledger.append(engine, entry)
    return summary


def write_summary(summary: RunSummary, path: Path, extra: dict[str, Any] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {**summary.to_dict(), **(extra or {})}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)
    return path


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if not isinstance(exc, RunError) else first


def status_report(settings: Settings | Resources, limit: int = 10) -> dict[str, Any]:
    """What ``lakehouse status`` shows: last runs (ledger), outcome counts, quarantine, every file's outcome."""
    from pipelines import control

    res = Resources.of(settings)
    engine = res.control
    files = control.file_outcomes(engine)
    return {
        "runs": ledger.runs(engine, limit=limit),
        "counts": control.outcome_counts(engine),
        "quarantined": [f for f in files if f["outcome"] == "quarantined"],
        "files": files,
        "lineage": lineage.waiting(res.settings),
    }
