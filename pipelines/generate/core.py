"""`generate()`: simulate, split into source-system exports, inject faults, write files and the truth file."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..settings import Settings
from ..sources import FEEDS_BY_NAME, feed_for
from . import encode
from .bioreactor import PARAMS, controller_csv
from .faults import CATALOG, OOS_KIND, OutFile, apply, finish_encoding, plan_counts
from .master import MasterData, load_master
from .world import World, build_world

TRUTH_VERSION = 1
UNREGISTERED_SERIAL = "XW25-UNREGISTERED"


@dataclass(frozen=True)
class GenerationReport:
    """What `generate` wrote. ``faults_by_kind`` counts injected faults (oos_value included)."""

    out_dir: Path
    truth_path: Path
    seed: int
    scale: int
    fault_rate: float
    files: tuple[Path, ...]
    bytes_written: int
    rows_by_feed: dict[str, int]
    bioreactor_readings: int  # long-format readings (rows x parameters), blanks included
    faults_by_kind: dict[str, int]
    batches_by_disposition: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase


def truth_path(settings: Settings) -> Path:
    """Where the truth file lives: HOME/generated/truth.json, outside the landing directory."""
    return settings.home / "generated" / "truth.json"


def _monthly(df: pd.DataFrame, feed_name: str, month_of: pd.Series, ext: str) -> list[OutFile]:
    feed = FEEDS_BY_NAME[feed_name]
    prefix = feed.pattern.split("*")[0]
    key = pd.to_datetime(month_of, utc=True).dt.strftime("%Y-%m")
    return [
        OutFile(f"{feed.system}/{prefix}{month}.{ext}", feed_name, frame=g.reset_index(drop=True))
        for month, g in df.groupby(key, sort=True)
    ]


def _plan_files(world: World) -> list[OutFile]:
    w = world
    start_of = w.batches.set_index("batch_id").started_at
    files: list[OutFile] = []
    files += _monthly(w.collections, "apheresis__collections", w.collections.collected_at, "csv")
    files += _monthly(w.batches, "mes__batches", w.batches.started_at, "csv")
    files += _monthly(w.process_steps, "mes__process_steps", w.process_steps.batch_id.map(start_of), "csv")
    files += _monthly(w.qc_results, "lims__qc_results", w.qc_results.sampled_at, "csv")
    files += _monthly(w.deviations, "qms__deviations", w.deviations.opened_at, "csv")
    files += _monthly(w.material_lots, "erp__material_lots", w.material_lots.received_at, "csv")
    files += _monthly(w.shipments, "logistics__shipments", w.shipments.shipped_at, "json")
    files += _monthly(w.infusions, "clinic__infusions", w.infusions.infused_at, "csv")
    for batch_id, g in w.samples.groupby("batch_id", sort=True):
        files.append(
            OutFile(f"analyzer/samples_{batch_id}.parquet", "analyzer__samples", frame=g.reset_index(drop=True))
        )
    for exp in w.expansions:
        name = f"{exp.equipment_id}_{exp.batch_id}_expansion_{exp.start:%Y%m%dT%H%M}Z.csv"
        files.append(OutFile(f"bioreactor/{name}", "bioreactor__readings", expansion=exp))
    oos = {(o["sample_id"], o["test_code"]) for o in w.oos}
    for f in files:
        if f.feed == "lims__qc_results":
            keys = zip(f.frame.sample_id, f.frame.test_code, strict=True)
            f.protected_rows = {i for i, k in enumerate(keys) if k in oos}
    return files


def _candidates(kind, files: list[OutFile]) -> list[OutFile]:
    if kind.name == "empty_file":  # only borrows a name: any leaf CSV file will do
        return [f for f in files if f.feed in kind.feeds]
    return [
        f
        for f in files
        if (kind.feeds == ("*",) or f.feed in kind.feeds)
        and not f.faults
        and not f.copied
        and not (kind.expected.startswith("quarantined") and f.protected_rows)
    ]


def _inject(files: list[OutFile], fault_rate: float, seed: int) -> list[OutFile]:
    """Plan and apply faults; returns the extra files (duplicates, the empty file) to write after encoding.

    Placed round by round (one of every kind, then the next of every kind that wants more) so that a kind with
    few candidate files is not crowded out by an earlier kind's extras.
    """
    rng = np.random.default_rng([seed, 3])
    counts = plan_counts(fault_rate, len(files))
    batch_ids = tuple(
        sorted({b for f in files if f.frame is not None and "batch_id" in f.frame for b in f.frame.batch_id.dropna()})
    )
    extra: list[OutFile] = []
    for nth in range(max(counts.values(), default=0)):
        for kind in CATALOG:
            if counts.get(kind.name, 0) <= nth:
                continue
            cands = _candidates(kind, files)
            if not cands:
                continue
            f = cands[int(rng.integers(len(cands)))]
            entry = {"kind": kind.name, "expected_outcome": kind.expected, "detail": {}}
            stem, ext = f.relpath.rsplit(".", 1)
            if kind.name == "duplicate_file":
                entry["detail"] = {"copy_of": f.relpath}
                f.copied = True  # keeps other faults off the original, so the copy's bytes are a clean file's
                extra.append(OutFile(f"{stem}_resent.{ext}", f.feed, copy_of=f, faults=[entry]))
            elif kind.name == "empty_file":
                extra.append(OutFile(f"{stem}_part2.{ext}", f.feed, faults=[entry]))
            else:
                entry["detail"] = apply(kind.name, f, rng, nth, batch_ids)
                f.faults.append(entry)
    return extra


def _encode(f: OutFile, master: MasterData, seed: int) -> None:
    feed = FEEDS_BY_NAME[f.feed]
    if f.expansion is not None:
        eq = master.equipment.set_index("equipment_id").serial_number
        serial = eq.get(f.controller.instrument_id or f.expansion.equipment_id, UNREGISTERED_SERIAL)
        export_at = f.expansion.start + pd.Timedelta(minutes=f.expansion.minutes + 15 + f.expansion.index % 40)
        f.data, f.rows = controller_csv(f.expansion, seed, export_at, f.controller, serial)
    elif feed.format == "parquet":
        f.data, f.rows = encode.to_parquet(f.frame, feed), len(f.frame)
    elif feed.format == "json":
        f.data, f.rows = encode.to_json(f.frame, feed), len(f.frame)
    else:
        opts = dict(f.csv_opts)
        if f.controller.timezone:
            opts["timezone"] = f.controller.timezone
        f.data = encode.to_csv(f.frame, feed, crlf=feed.system == "lims", **opts)
        f.rows = len(f.frame)
    for fault in f.faults:
        if fault["kind"] == "wrong_encoding":
            finish_encoding(f, fault)
        elif fault["kind"] == "truncated_file":
            f.data = f.data[: int(len(f.data) * f.truncate_to)]


def _sha256_of(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


class _Ownership:
    """Which bytes the generator has written where: HOME/generated/owned.json, {out_dir: {file: [sha256, ...]}}.

    A landing directory can hold real exports, so the generator replaces or removes only files whose current bytes
    it wrote itself. The intent is recorded before the first byte is written, so an interrupted run still owns
    everything it may have touched.
    """

    def __init__(self, settings: Settings, out_dir: Path):
        self.path = settings.home / "generated" / "owned.json"
        self.key = str(out_dir.resolve())
        try:
            self.doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.doc = {}
        self.files: dict[str, list[str]] = self.doc.get(self.key, {})

    def save(self, files: dict[str, list[str]]) -> None:
        self.files = self.doc[self.key] = files
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _write_files(settings: Settings, out_dir: Path, files: list[OutFile]) -> list[Path]:
    """Write the files; never overwrite what the generator did not write; drop its own files it no longer writes."""
    owned = _Ownership(settings, out_dir)
    planned = {f.relpath: hashlib.sha256(f.data).hexdigest() for f in files}
    foreign = [
        rel
        for rel in sorted(planned)
        if (sha := _sha256_of(out_dir / rel)) and sha != planned[rel] and sha not in owned.files.get(rel, [])
    ]
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise ValueError(
            f"refusing to overwrite {out_dir / foreign[0]}{more}: not written by the generator; "
            "choose an empty output directory"
        )
    intent = {rel: sorted(set(owned.files.get(rel, [])) | {sha}) for rel, sha in planned.items()}
    owned.save({**owned.files, **intent})
    for rel, shas in owned.files.items():
        if rel not in planned and _sha256_of(out_dir / rel) in shas:
            (out_dir / rel).unlink()
    written = []
    for f in sorted(files, key=lambda x: x.relpath):
        path = out_dir / f.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f.data)
        written.append(path)
    owned.save({rel: [sha] for rel, sha in planned.items()})
    return written


def generate(settings: Settings, out_dir: Path, scale: int, seed: int, fault_rate: float) -> GenerationReport:
    """Write a synthetic CGT data set into ``out_dir/<system>/<file>`` and the truth file.

    ``scale`` batches (vein to vein), deterministic for ``seed``: the same arguments give byte-identical files.
    ``fault_rate`` (0..1) is the share of files made faulty, with at least one fault of every kind in
    `faults.CATALOG` when it is > 0 and none when it is 0. The truth file (`truth_path(settings)`) lists every
    file with its sha256 and expected ingest outcome, and every fault. Files this function wrote earlier (recorded
    in HOME/generated/owned.json) are replaced or, if no longer produced, removed when unmodified; any other file
    in the way raises ValueError before anything is written, and nothing else in ``out_dir`` is touched.
    """
    if scale < 1:
        raise ValueError(f"scale must be at least 1 batch, got {scale}")
    if not 0.0 <= fault_rate <= 1.0:
        raise ValueError(f"fault_rate must be between 0 and 1, got {fault_rate}")
    t0, c0 = time.perf_counter(), time.process_time()
    seconds: dict[str, float] = {}
    master = load_master()
    world = build_world(master, scale, seed, fault_rate)
    seconds["simulate"] = time.perf_counter() - t0

    t = time.perf_counter()
    files = _plan_files(world)
    extra = _inject(files, fault_rate, seed)
    for f in files:
        _encode(f, master, seed)
    for new in extra:
        if new.copy_of is not None:  # duplicate: the same bytes as the (clean) original
            new.data, new.rows = new.copy_of.data, new.copy_of.rows
    files += extra
    seconds["encode"] = time.perf_counter() - t

    t = time.perf_counter()
    out_dir = Path(out_dir)
    truth = truth_path(settings)
    for f in files:
        misfiled = any(x["kind"] == "misfiled" for x in f.faults)  # under another feed's path on purpose
        if not misfiled and ((feed := feed_for(out_dir / f.relpath)) is None or feed.name != f.feed):
            raise AssertionError(f"generated file {f.relpath} does not match its feed {f.feed}")
    written = _write_files(settings, out_dir, files)
    faults, entries = [], []
    for f in sorted(files, key=lambda x: x.relpath):
        ids = []
        for fault in f.faults:
            fid = f"F{len(faults) + 1:03d}"
            ids.append(fid)
            faults.append(
                {
                    "id": fid,
                    "kind": fault["kind"],
                    "file": f.relpath,
                    "feed": f.feed,
                    "expected_outcome": fault["expected_outcome"],
                    "detail": fault["detail"],
                }
            )
        expected = f.expected
        entries.append(
            {
                "file": f.relpath,
                "feed": f.feed,
                "sha256": hashlib.sha256(f.data).hexdigest(),
                "bytes": len(f.data),
                "data_rows": f.rows,
                "expected_outcome": expected,
                "rows_rejected": f.rows_rejected if expected == "rows-rejected" else 0,
                "faults": ids,
            }
        )
    oos_file = {  # OOS rows are protected from faults, so the file that holds one is where ingest finds it
        (f.frame.sample_id[i], f.frame.test_code[i]): f.relpath
        for f in files
        if f.feed == "lims__qc_results" and f.frame is not None
        for i in f.protected_rows
    }
    for o in world.oos:
        faults.append(
            {
                "id": f"F{len(faults) + 1:03d}",
                "kind": OOS_KIND.name,
                "file": oos_file[(o["sample_id"], o["test_code"])],
                "feed": "lims__qc_results",
                "expected_outcome": OOS_KIND.expected,
                "detail": o,
            }
        )

    rows_by_feed = Counter()
    for f in files:
        if f.expected != "duplicate":  # rows in distinct files (a duplicate repeats its original's rows)
            rows_by_feed[f.feed] += f.rows
    dispositions = dict(sorted(Counter(world.batches.disposition).items()))
    by_kind = dict(sorted(Counter(x["kind"] for x in faults).items()))
    doc = {
        "truth_version": TRUTH_VERSION,
        "seed": seed,
        "scale": scale,
        "fault_rate": fault_rate,
        "as_of": world.as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "batches_by_disposition": dispositions,
        "summary": {
            "files": len(entries),
            "by_expected_outcome": dict(sorted(Counter(e["expected_outcome"] for e in entries).items())),
            "faults_by_kind": by_kind,
            "bioreactor_parameters": [p for p, _, _ in PARAMS],
        },
        "files": entries,
        "faults": faults,
        "catalog": [
            {"kind": k.name, "expected_outcome": k.expected, "structural": k.structural, "what": k.what, "how": k.how}
            for k in (*CATALOG, OOS_KIND)
        ],
    }
    truth.parent.mkdir(parents=True, exist_ok=True)
    truth.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    seconds["write"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    seconds["cpu"] = time.process_time() - c0  # CPU time of this process: comparable on a shared, loaded host
    readings = rows_by_feed["bioreactor__readings"] * len(PARAMS)
    return GenerationReport(
        out_dir=out_dir,
        truth_path=truth,
        seed=seed,
        scale=scale,
        fault_rate=fault_rate,
        files=tuple(written),
        bytes_written=sum(len(f.data) for f in files),
        rows_by_feed=dict(sorted(rows_by_feed.items())),
        bioreactor_readings=readings,
        faults_by_kind=by_kind,
        batches_by_disposition=dispositions,
        seconds={k: round(v, 3) for k, v in seconds.items()},
    )


__all__ = ["GenerationReport", "generate", "truth_path"]
