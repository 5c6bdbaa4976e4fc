"""Ingest: land files byte-for-byte in the raw zone and record them in the ingest manifest.

``land(res, paths, run_id)`` is the whole stage (the CLI, the runner and Dagster call it). For each file:

0. a file whose path, size and mtime equal its newest check in ``file_checks`` is not read at all: its bytes are
   on record (``unchanged``). Every ``LAKEHOUSE_REHASH_INTERVAL_DAYS`` a full re-hash reads every file again and
   records each check, so a file altered in place with its mtime restored is still caught (ADR 0140);
1. hash it (SHA-256) and find its feed from ``<system>/<name>`` (pipelines.sources); no feed -> ``_unknown``
   (validation quarantines it as ``unknown_feed``);
2. bytes never seen before -> copy to ``raw/<feed>/<sha256[:2]>/<sha256>`` (refusing to overwrite, re-hashing the
   copy), one manifest row, validation pending;
3. bytes already in the raw zone under another path -> a manifest row with outcome ``duplicate`` (the delivery is
   on record) and no new raw object;
4. the same path with the same bytes already landed (the landing directory is re-scanned) -> nothing is written:
   a no-op, reported as ``duplicate`` with ``recorded=False``.

A file the OS cannot read (permissions, vanished) cannot be landed: it is reported with outcome ``failed`` and a
one-line reason, nothing is recorded, and the other files go on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipelines import control, landing, locks, storage
from pipelines.resources import Resources
from pipelines.settings import Settings
from pipelines.sources import feed_for

log = logging.getLogger(__name__)
LANDING_LOCK = "landing"

HEAD_BYTES = 4096  # enough for a controller export's '# key: value' metadata block


@dataclass(frozen=True)
class LandedFile:
    """One file ``land`` handled. ``outcome``: ``landed`` (new bytes, validation pending), ``duplicate`` (bytes
    already in the raw zone), or ``failed`` (could not be read; ``reason`` says why, nothing recorded)."""

    original_name: str
    source_path: str
    source_system: str
    feed: str | None
    instrument_id: str | None
    sha256: str | None
    size: int | None
    received_at: datetime
    run_id: str
    raw_uri: str | None
    outcome: str
    reason: str | None = None
    recorded: bool = True  # False: the same path + bytes were landed before; nothing was written
    manifest_seq: int | None = None

    @property
    def name(self) -> str:
        return self.original_name


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files as given, directories expanded to the files under them (hidden files skipped), in a stable order."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(
                f for f in p.rglob("*") if f.is_file() and not any(s.startswith(".") for s in f.relative_to(p).parts)
            )
        else:
            out.append(p)
    return out


def controller_metadata(head: bytes) -> dict[str, str]:
    """The ``# key: value`` lines at the top of a controller export (empty if the bytes are not UTF-8 text)."""
    meta: dict[str, str] = {}
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return meta
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].partition(":")
        if sep:
            meta[key.strip()] = value.strip()
    return meta


def _instrument(path: Path, fmt: str | None) -> str | None:
    if fmt != "controller_csv":
        return None  # other instrument feeds name the instrument per row (checked row by row)
    with path.open("rb") as fh:
        return controller_metadata(fh.read(HEAD_BYTES)).get("instrument_id")


def full_rehash_due(res: Resources) -> bool:
    """True when no full re-hash was recorded within ``LAKEHOUSE_REHASH_INTERVAL_DAYS`` (0: every run)."""
    days = res.settings.rehash_interval_days
    last = control.last_full_rehash(res.control)
    return days == 0 or last is None or control.utcnow() - last >= timedelta(days=days)


def land(
    res: Resources | Settings, paths: Sequence[Path], run_id: str, *, full_rehash: bool | None = None
) -> list[LandedFile]:
    """Copy each file into the raw zone (content-addressed, never overwritten) and record it; see module doc.

    ``full_rehash``: hash every file even if unchanged since its last check (None: when one is due)."""
    res = Resources.of(res)
    # No two ingests or validations of the same files interleave; the control DB is first touched under the lock
    # too (creating its tables is not atomic on SQLite).
    with locks.hold(res.settings, LANDING_LOCK):
        if full_rehash is None:
            full_rehash = full_rehash_due(res)
        return _land_all(res, paths, run_id, full_rehash)


def _land_all(res: Resources, paths: Sequence[Path], run_id: str, full_rehash: bool) -> list[LandedFile]:
    eng = res.control
    checks = {} if full_rehash else control.latest_checks(eng)
    results: list[LandedFile] = []
    new_checks: list[dict[str, Any]] = []
    for path in expand(paths):
        try:
            stat = path.stat()
        except OSError:
            stat = None  # _land_one reports the file as failed
        known = checks.get(landing.origin(res.settings, path)) if stat else None
        if known and known["size_bytes"] == stat.st_size and known["mtime_ns"] == stat.st_mtime_ns:
            results.append(_unchanged(path, known, run_id))
            continue
        landed = _land_one(res.settings, eng, res.raw, path, run_id)
        results.append(landed)
        if stat and landed.manifest_seq is not None:
            new_checks.append(
                {
                    "original_path": landed.source_path,
                    "size_bytes": stat.st_size,
                    "mtime_ns": stat.st_mtime_ns,
                    "sha256": landed.sha256,
                    "manifest_seq": landed.manifest_seq,
                    "full_rehash": full_rehash,
                    "run_id": run_id,
                    "hashed_at": landed.received_at,
                }
            )
    with eng.begin() as conn:
        control.add_checks(conn, new_checks)
    return results


def _unchanged(path: Path, known: dict[str, Any], run_id: str) -> LandedFile:
    feed = feed_for(path)
    return LandedFile(
        original_name=path.name,
        source_path=known["original_path"],
        source_system=path.parent.name or "_unknown",
        feed=feed.name if feed else None,
        instrument_id=None,
        sha256=known["sha256"],
        size=known["size_bytes"],
        received_at=control.utcnow(),
        run_id=run_id,
        raw_uri=None,
        outcome="duplicate",
        reason="unchanged since its last check (path, size, mtime)",
        recorded=False,
        manifest_seq=known["manifest_seq"],
    )


def _land_one(settings: Settings, eng, raw: storage.Store, path: Path, run_id: str) -> LandedFile:
    feed = feed_for(path)
    received_at = control.utcnow()
    base = {
        "original_name": path.name,
        "source_path": landing.origin(settings, path),  # s3://bucket/key for a fetched landing object
        "source_system": path.parent.name or "_unknown",
        "feed": feed.name if feed else None,
        "received_at": received_at,
        "run_id": run_id,
    }
    try:
        sha, size = storage.sha256_file(path)
        instrument = _instrument(path, feed.format if feed else None)
    except OSError as exc:
        reason = f"cannot read {path}: {exc.strerror or exc}"
        log.warning(reason)
        return LandedFile(
            **base,
            instrument_id=None,
            sha256=None,
            size=None,
            raw_uri=None,
            outcome="failed",
            reason=reason,
            recorded=False,
        )
    key = storage.raw_key(base["feed"], sha)
    with eng.connect() as conn:
        seen_here = control.find_landing(conn, sha256=sha, original_path=base["source_path"])
        first = seen_here or control.find_original(conn, sha256=sha, feed=base["feed"])
    if seen_here:
        return LandedFile(
            **base,
            instrument_id=instrument,
            sha256=sha,
            size=size,
            raw_uri=seen_here["raw_uri"],
            outcome="duplicate",
            reason="already landed from this path",
            recorded=False,
            manifest_seq=seen_here["seq"],
        )

    if first is None:
        try:
            raw.put_file(key, path, sha)
        except storage.ObjectExists:
            pass  # bytes stored by an earlier run that crashed before recording them: they are identical
        except (OSError, storage.StorageError) as exc:
            reason = f"cannot land {path}: {exc}"
            log.warning(reason)
            return LandedFile(
                **base,
                instrument_id=instrument,
                sha256=sha,
                size=size,
                raw_uri=None,
                outcome="failed",
                reason=reason,
                recorded=False,
            )
        raw_key, raw_uri = key, raw.uri(key)
    else:
        raw_key, raw_uri = first["raw_key"], first["raw_uri"]

    row = {
        "run_id": run_id,
        "received_at": received_at,
        "source_system": base["source_system"],
        "feed": base["feed"],
        "instrument_id": instrument,
        "original_name": base["original_name"],
        "original_path": base["source_path"],
        "sha256": sha,
        "size_bytes": size,
        "raw_key": raw_key,
        "raw_uri": raw_uri,
    }
    try:
        with eng.begin() as conn:
            seq = control.add_manifest_row(conn, row)
            if first is not None:
                reason = f"same bytes as {first['original_name']} (landed {control.iso(first['received_at'])})"
                control.add_outcome(
                    conn,
                    {
                        "manifest_seq": seq,
                        "sha256": sha,
                        "outcome": "duplicate",
                        "reason": reason,
                        "run_id": run_id,
                        "decided_at": received_at,
                    },
                )
    except sa.exc.IntegrityError:
        # Another host landed the same delivery between our check and insert (unique path + SHA-256).
        return LandedFile(
            **base,
            instrument_id=instrument,
            sha256=sha,
            size=size,
            raw_uri=raw_uri,
            outcome="duplicate",
            reason="already landed from this path (by a concurrent run)",
            recorded=False,
        )
    return LandedFile(
        **base,
        instrument_id=instrument,
        sha256=sha,
        size=size,
        raw_uri=raw_uri,
        outcome="duplicate" if first is not None else "landed",
        reason=reason if first is not None else None,
        manifest_seq=seq,
    )
