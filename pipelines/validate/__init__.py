"""Validation: every raw file without an outcome -> accepted (rows to landing Parquet) or quarantined (+ reason).

``validate_pending(res, run_id)`` is the whole stage (``revalidate`` runs the same steps again on files already
decided). Per pending file (manifest row without an outcome):

1. read the raw object and parse it per its feed's format (:mod:`pipelines.validate.readers`); a structural
   failure (unreadable, empty, encoding, schema drift, misfiled, unknown instrument, unknown feed) quarantines the file:
   a copy plus ``reason.json`` goes to quarantine, the outcome ``quarantined`` with the reason is recorded;
2. run the feed's expectation suite (:mod:`pipelines.validate.expectations`). Files of one feed are validated
   together in one GE batch (GE costs ~0.2 s per call however small the frame; per-file results are split out by
   row position), which keeps the whole demo within seconds;
3. apply each expectation's policy per row: ``reject`` -> the row goes to ``LAKE/rejected/<feed>/<sha256>.parquet``
   with ``_reject_reasons``; ``flag`` -> the row is kept with the name in ``_dq_flags``;
4. write accepted rows with the lineage columns to ``LAKE/landing/<feed>/<sha256>.parquet`` (zstd), the per-file
   result JSON + HTML report to ``HOME/validation/<feed>/<sha256>.{json,html}``, then record ``accepted``.

Outputs are written before the outcome is recorded, so a crash leaves the file pending and the next run redoes it.
"""

from __future__ import annotations

import io
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import control, locks, storage
from pipelines.resources import Resources
from pipelines.settings import Settings
from pipelines.sources import ARROW_TYPES, FEEDS, FEEDS_BY_NAME, LINEAGE_COLUMNS, Feed
from pipelines.validate import expectations, integrity, readers, report

log = logging.getLogger(__name__)

MAX_BATCH_ROWS = 2_000_000  # rows per GE call (memory bound); files of one feed are grouped up to this
REJECT_COLUMN = "_reject_reasons"


@dataclass
class FileVerdict:
    """The verdict on one raw file (what the runner, ledger and lineage read)."""

    manifest_seq: int
    original_name: str
    feed: str | None
    sha256: str
    raw_uri: str
    outcome: str  # accepted | quarantined
    reason: str | None = None
    reason_kind: str | None = None
    rows_accepted: int = 0
    rows_flagged: int = 0
    rows_rejected: int = 0
    suite: str | None = None
    landing_uri: str | None = None
    rejected_uri: str | None = None
    quarantine_uri: str | None = None
    report_uri: str | None = None
    assertions: tuple[tuple[str, bool, str | None], ...] = ()  # (expectation, success, column) for lineage
    flags: dict[str, int] = field(default_factory=dict)
    rejects: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.original_name


def landing_schema(feed: Feed) -> pa.Schema:
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.type]) for c in (*feed.columns, *LINEAGE_COLUMNS)])


def rejected_schema(feed: Feed) -> pa.Schema:
    """Rejected rows keep the registry columns (NULL where the text did not parse) plus the reasons."""
    return pa.schema([*landing_schema(feed), pa.field(REJECT_COLUMN, pa.string())])


def _parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def ensure_schema_files(res: Resources | Settings) -> None:
    """A zero-row ``_schema.parquet`` in every feed's landing and rejected directory (readers never see no file)."""
    lake = Resources.of(res).lake
    for feed in FEEDS:
        for zone, schema in (("landing", landing_schema(feed)), ("rejected", rejected_schema(feed))):
            key = f"{zone}/{feed.name}/_schema.parquet"
            if not lake.exists(key):
                lake.put_bytes(key, _parquet_bytes(schema.empty_table()), overwrite=True)


# --- per-row policy ---------------------------------------------------------------------------------


@dataclass
class _Cells:
    """Per-row (or, for a melted feed, per row x parameter) rejects and flags of one file."""

    shape: tuple[int, int]
    reject: dict[str, np.ndarray] = field(default_factory=dict)  # name -> bool matrix
    flag: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, policy: str, name: str, rows: np.ndarray, col_ix: int | None) -> None:
        target = self.reject if policy == "reject" else self.flag
        m = target.get(name)
        if m is None:
            m = target[name] = np.zeros(self.shape, dtype=bool)
        if col_ix is None:
            m[rows, :] = True
        else:
            m[rows, col_ix] = True


def _join_names(masks: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Flattened: any-mask, and ';'-joined names per cell (None where no name applies). Loops only over hits."""
    any_mask = np.zeros(n, dtype=bool)
    text = np.full(n, None, dtype=object)
    for name, m in masks.items():
        flat = m.ravel()
        any_mask |= flat
        for i in np.flatnonzero(flat):
            text[i] = name if text[i] is None else f"{text[i]};{name}"
    return any_mask, text


def _repeat(value: Any, n: int, type_: pa.DataType) -> pa.Array:
    """``value`` n times, built in C++ (a Python list of millions of strings would dominate the run time;
    ``take`` of a one-element array costs ~50x ``pa.repeat`` for a 64-character SHA-256 per row)."""
    return pa.repeat(pa.scalar(value, type=type_), n)


def _long_table(feed: Feed, parsed: readers.Parsed, lineage: dict[str, Any], flags: pa.Array) -> pa.Table:
    """The file's rows in the landing layout (melted for the controller export), lineage columns appended."""
    n = len(parsed.frame)
    f = parsed.frame
    string = pa.string()
    if parsed.melt_params:
        k = len(parsed.melt_params)
        row_ix = pa.array(np.repeat(np.arange(n, dtype=np.int64), k))
        param_ix = pa.array(np.tile(np.arange(k, dtype=np.int32), n))
        units = [parsed.units.get(p, "") for p in parsed.melt_params]
        cols: dict[str, Any] = {
            "batch_id": _repeat(parsed.constants["batch_id"], n * k, string),
            "unit_op": _repeat(parsed.constants["unit_op"], n * k, string),
            "equipment_id": _repeat(parsed.constants["equipment_id"], n * k, string),
            "param": pa.array(list(parsed.melt_params), type=string).take(param_ix),
            "ts_utc": pa.array(f["timestamp"], type=ARROW_TYPES["TIMESTAMPTZ"]).take(row_ix),
            "value": pa.array(f[list(parsed.melt_params)].to_numpy(dtype="float64").ravel(), from_pandas=True),
            "unit": pa.array(units, type=string).take(param_ix),
            "quality": pa.array(f["quality"], type=string, from_pandas=True).take(row_ix),
        }
        rows = np.repeat(parsed.source_rows, k)
    else:
        cols = {c.name: f[c.name] for c in feed.columns}
        rows = parsed.source_rows
    total = len(rows)
    cols["_source_sha256"] = _repeat(lineage["sha256"], total, string)
    cols["_source_file"] = _repeat(lineage["file"], total, string)
    cols["_source_row"] = rows.astype(np.int64)
    cols["_ingest_run_id"] = _repeat(lineage["run_id"], total, string)
    cols["_ingested_at"] = _repeat(lineage["at"], total, ARROW_TYPES["TIMESTAMPTZ"])
    cols["_dq_flags"] = flags
    schema = landing_schema(feed)
    arrays = [
        cols[fld.name]
        if isinstance(cols[fld.name], pa.Array)
        else pa.array(cols[fld.name], type=fld.type, from_pandas=True)
        for fld in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


# --- the stage --------------------------------------------------------------------------------------


def validate_pending(res: Resources | Settings, run_id: str) -> list[FileVerdict]:
    """Validate every landed file that has no outcome yet; returns one verdict per file (see module doc)."""
    res = Resources.of(res)
    from pipelines.ingest import LANDING_LOCK

    # One validator at a time: a second one waits, then finds the files decided (no two outcomes for one delivery).
    with locks.hold(res.settings, LANDING_LOCK):
        return _validate_pending(res, run_id)


def revalidate(res: Resources | Settings, run_id: str, targets: list[dict[str, Any]]) -> list[FileVerdict]:
    """Validate already decided files again (``control.revalidation_targets``), after a suite or registry change.

    Each file's earlier outcome stays on record; the new verdict is appended and counts from now on. Derived
    objects follow the new verdict: a file now quarantined loses its landing and rejected Parquet, a file now
    without rejected rows loses its stale rejected Parquet (the raw object is never touched).
    """
    res = Resources.of(res)
    from pipelines.ingest import LANDING_LOCK

    with locks.hold(res.settings, LANDING_LOCK):
        verdicts = _validate(res, run_id, targets)
        for v in verdicts:
            if v.feed is None:
                continue
            if v.outcome == "quarantined":
                res.lake.delete(f"landing/{v.feed}/{v.sha256}.parquet")
            if v.outcome == "quarantined" or not v.rows_rejected:
                res.lake.delete(f"rejected/{v.feed}/{v.sha256}.parquet")
        return verdicts


def _validate_pending(res: Resources, run_id: str) -> list[FileVerdict]:
    return _validate(res, run_id, control.pending(res.control))


def _validate(res: Resources, run_id: str, todo: list[dict[str, Any]]) -> list[FileVerdict]:
    ensure_schema_files(res)
    if not todo:
        return []
    raw = res.raw
    equipment = expectations.equipment_ids()
    verdicts: list[FileVerdict] = []
    parsed_by_group: dict[tuple, list[tuple[dict[str, Any], readers.Parsed]]] = defaultdict(list)
    for m in todo:
        feed = FEEDS_BY_NAME.get(m["feed"] or "")
        try:
            if feed is None:
                raise _unclaimed(m["source_system"], m["original_name"])
            data = raw.read_bytes(m["raw_key"])
            parsed = readers.read(data, feed, equipment)
            found = integrity.check(feed, m["original_name"], parsed)  # identity, units, calibration (ADR 0162)
            parsed.flags, parsed.notes = found.flags, found.notes
        except readers.Structural as s:
            verdicts.append(_quarantine(res, m, s, run_id))
            continue
        parsed_by_group[(feed.name, tuple(parsed.frame.columns))].append((m, parsed))

    for (feed_name, _cols), items in parsed_by_group.items():
        suite = expectations.load_suite(feed_name)
        for chunk in _chunks(items):
            verdicts += _validate_chunk(res, FEEDS_BY_NAME[feed_name], suite, chunk, run_id)
    report.write_index(Path(res.settings.home) / "validation")
    return verdicts


def _unclaimed(system: str, name: str) -> readers.Structural:
    """Why no feed claims ``system/name``: ``misfiled`` when another system's feed claims the name by its own
    naming (a literal prefix like ``qc_results_``, or the file-name convention of ``name_identity``; a bare
    ``*.csv`` claims nothing here): an export delivered to the wrong folder. Else ``unknown_feed``."""

    def names_it(f: Feed) -> bool:
        if f.system == system or not f.matches(PurePath(f.system, name)):
            return False
        return not f.pattern.startswith("*") or bool(f.name_identity and re.fullmatch(f.name_identity, name))

    owners = [f for f in FEEDS if names_it(f)]
    if owners:
        o = owners[0]
        return readers.Structural(
            "misfiled", f"no feed of {system}/ claims {name}; feed {o.name} does ({o.system}/{o.pattern}): wrong folder"
        )
    return readers.Structural("unknown_feed", f"no feed claims {system}/{name} (pipelines/sources.py)")


def _chunks(items: list) -> list[list]:
    chunks, current, rows = [], [], 0
    for item in items:
        n = len(item[1].frame)
        if current and rows + n > MAX_BATCH_ROWS:
            chunks.append(current)
            current, rows = [], 0
        current.append(item)
        rows += n
    if current:
        chunks.append(current)
    return chunks


def _validate_chunk(
    res: Resources, feed: Feed, suite: expectations.Suite, chunk: list, run_id: str
) -> list[FileVerdict]:
    frames = [p.frame for _m, p in chunk]
    big = pd.concat(frames, ignore_index=True)
    big[expectations.FILE_COLUMN] = np.repeat(np.arange(len(frames)), [len(f) for f in frames])
    gx_json, results = expectations.run(suite, big)
    offsets = np.cumsum([0] + [len(f) for f in frames])
    report.save_gx_result(Path(res.settings.home) / "validation", run_id, feed.name, gx_json)
    out = []
    for i, (m, parsed) in enumerate(chunk):
        lo, hi = offsets[i], offsets[i + 1]
        per_file = []
        for r in results:
            idx = r.unexpected[(r.unexpected >= lo) & (r.unexpected < hi)] - lo
            per_file.append((r.rule, idx))
        out.append(_finish_file(res, feed, suite, m, parsed, per_file, run_id))
    return out


def _finish_file(
    res: Resources,
    feed: Feed,
    suite: expectations.Suite,
    m: dict[str, Any],
    parsed: readers.Parsed,
    per_rule: list,
    run_id: str,
) -> FileVerdict:
    n = len(parsed.frame)
    width = len(parsed.melt_params) or 1
    col_ix = {p: j for j, p in enumerate(parsed.melt_params)}
    cells = _Cells((n, width))
    for column, mask in parsed.coerce_errors.items():
        cells.add("reject", f"{column}_unparseable", np.flatnonzero(mask), col_ix.get(column))
    for name, mask in parsed.flags.items():
        cells.add("flag", name, np.flatnonzero(mask), None)
    for rule, idx in per_rule:
        if len(idx):
            cells.add(rule.policy, rule.name, idx, col_ix.get(rule.column) if rule.column else None)
    total = n * width
    rejected, reasons = _join_names(cells.reject, total)
    flagged, flags = _join_names(cells.flag, total)
    at = control.utcnow()
    lineage = {"sha256": m["sha256"], "file": m["original_name"], "run_id": run_id, "at": at}
    flag_array = pa.array(flags, type=pa.string()) if flagged.any() else pa.nulls(total, pa.string())
    table = _long_table(feed, parsed, lineage, flag_array)
    accepted = table.filter(pa.array(~rejected)) if rejected.any() else table  # most files: nothing to drop
    lake = res.lake
    landing_key = f"landing/{feed.name}/{m['sha256']}.parquet"
    lake.put_bytes(landing_key, _parquet_bytes(accepted), overwrite=True)
    rejected_uri = None
    if rejected.any():
        rej = table.filter(pa.array(rejected)).append_column(
            REJECT_COLUMN, pa.array(reasons[rejected], type=pa.string())
        )
        rej_key = f"rejected/{feed.name}/{m['sha256']}.parquet"
        lake.put_bytes(rej_key, _parquet_bytes(rej), overwrite=True)
        rejected_uri = lake.uri(rej_key)
    counts_reject = {k: int(v.sum()) for k, v in cells.reject.items()}
    counts_flag = {k: int(v.sum()) for k, v in cells.flag.items()}
    n_rej, n_flag = int(rejected.sum()), int((flagged & ~rejected).sum())
    summary = []
    if n_rej:
        summary.append(f"{n_rej} rows rejected (" + ", ".join(f"{k}: {v}" for k, v in counts_reject.items()) + ")")
    if n_flag:
        summary.append(f"{n_flag} rows flagged (" + ", ".join(f"{k}: {v}" for k, v in counts_flag.items()) + ")")
    summary += parsed.notes
    verdict = FileVerdict(
        manifest_seq=m["seq"],
        original_name=m["original_name"],
        feed=feed.name,
        sha256=m["sha256"],
        raw_uri=m["raw_uri"],
        outcome="accepted",
        reason="; ".join(summary) or None,
        rows_accepted=total - n_rej,
        rows_flagged=n_flag,
        rows_rejected=n_rej,
        suite=suite.label,
        landing_uri=lake.uri(landing_key),
        rejected_uri=rejected_uri,
        assertions=tuple((rule.name, len(idx) == 0, rule.column) for rule, idx in per_rule),
        flags=counts_flag,
        rejects=counts_reject,
    )
    verdict.report_uri = report.write_file_report(
        Path(res.settings.home) / "validation", verdict, m, suite, per_rule, parsed.coerce_errors
    )
    _record(res.control, verdict, run_id, at)
    return verdict


def _quarantine(res: Resources, m: dict[str, Any], s: readers.Structural, run_id: str) -> FileVerdict:
    at = control.utcnow()
    reason = {
        "file": m["original_name"],
        "sha256": m["sha256"],
        "feed": m["feed"],
        "reason_kind": s.kind,
        "reason": s.detail,
        "run_id": run_id,
        "decided_at": control.iso(at),
    }
    q_uri = storage.quarantine(res, m["raw_key"], m["feed"], m["sha256"], m["original_name"], reason)
    verdict = FileVerdict(
        manifest_seq=m["seq"],
        original_name=m["original_name"],
        feed=m["feed"],
        sha256=m["sha256"],
        raw_uri=m["raw_uri"],
        outcome="quarantined",
        reason=f"{s.kind}: {s.detail}",
        reason_kind=s.kind,
        quarantine_uri=q_uri,
    )
    verdict.report_uri = report.write_file_report(Path(res.settings.home) / "validation", verdict, m, None, [], {})
    _record(res.control, verdict, run_id, at)
    log.info("quarantined %s: %s", m["original_name"], verdict.reason)
    return verdict


def _record(eng, v: FileVerdict, run_id: str, at: datetime) -> None:
    with eng.begin() as conn:
        control.add_outcome(
            conn,
            {
                "manifest_seq": v.manifest_seq,
                "sha256": v.sha256,
                "outcome": v.outcome,
                "reason_kind": v.reason_kind,
                "reason": v.reason,
                "rows_accepted": v.rows_accepted,
                "rows_flagged": v.rows_flagged,
                "rows_rejected": v.rows_rejected,
                "suite": v.suite,
                "landing_uri": v.landing_uri,
                "rejected_uri": v.rejected_uri,
                "quarantine_uri": v.quarantine_uri,
                "report_uri": v.report_uri,
                "run_id": run_id,
                "decided_at": at,
            },
        )
