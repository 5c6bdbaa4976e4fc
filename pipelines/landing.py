"""Where exports land: a directory (local or a mounted share) or a bucket/prefix on the object store.

``LAKEHOUSE_LANDING_BACKEND=local`` (default): files under ``LAKEHOUSE_LANDING_DIR``. ``s3``: objects under
``LAKEHOUSE_LANDING_PREFIX`` in ``LAKEHOUSE_LANDING_BUCKET`` (same endpoint and account as the raw zone), laid
out like the directory: ``<prefix><system>/<file>``. Hidden names (a segment starting with ``.``) are skipped.

* :func:`scan` lists what is settled — unchanged for ``LAKEHOUSE_LANDING_SETTLE_SECONDS`` (file mtime, object
  LastModified) — without reading any bytes: the sensor's tick, and every full scan (schedule, ``lakehouse run``).
* :func:`fetch` turns scanned locations into local files ingest can land: paths as they are; an object is copied
  once into ``HOME/landing-s3/<bucket>/<key>`` with its LastModified as mtime (a copy of the same size and mtime
  is not fetched again), so ingest's unchanged-file check (ADR 0140) applies to objects too.
* :func:`origin` is what the ingest manifest records as a file's original path: ``s3://bucket/key`` for an object.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from pipelines.resources import Resources
from pipelines.settings import Settings

log = logging.getLogger(__name__)

S3 = "s3://"


def mirror_root(settings: Settings) -> Path:
    """Local copies of landed objects (disposable: fetched again when missing)."""
    return (Path(settings.home) / "landing-s3").resolve()


def _mtime_ns(last_modified) -> int:
    return int(round(last_modified.timestamp() * 1_000_000)) * 1000


def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


def scan(res: Resources | Settings) -> dict[str, list[int]]:
    """Settled landed files: location (path or ``s3://`` URI) -> [size, mtime_ns], in a stable order."""
    from pipelines.ingest import expand

    res = Resources.of(res)
    s = res.settings
    horizon_ns = (time.time() - s.landing_settle_seconds) * 1e9
    found: dict[str, list[int]] = {}
    if s.landing_backend == "s3":
        pages = res.s3.get_paginator("list_objects_v2").paginate(Bucket=s.landing_bucket, Prefix=s.landing_prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                key, relative = obj["Key"], obj["Key"][len(s.landing_prefix) :]
                if not relative or key.endswith("/") or _hidden(relative):
                    continue
                mtime = _mtime_ns(obj["LastModified"])
                if s.landing_settle_seconds <= 0 or mtime <= horizon_ns:
                    found[f"{S3}{s.landing_bucket}/{key}"] = [int(obj["Size"]), mtime]
        return dict(sorted(found.items()))
    root = Path(s.landing_dir)
    for p in expand([root]) if root.is_dir() else []:
        try:
            stat = p.stat()
        except FileNotFoundError:
            continue
        if s.landing_settle_seconds <= 0 or stat.st_mtime_ns <= horizon_ns:
            found[str(p)] = [stat.st_size, stat.st_mtime_ns]
    return found


def fetch(res: Resources | Settings, locations: Sequence[str | Path]) -> list[Path]:
    """Local files for ``locations`` (from :func:`scan` or a run request): objects are copied in, once."""
    res = Resources.of(res)
    out: list[Path] = []
    for location in locations:
        text = str(location)
        if not text.startswith(S3):
            out.append(Path(location))
            continue
        copy = _fetch_object(res, text)
        if copy is not None:
            out.append(copy)
    return out


def _fetch_object(res: Resources, uri: str) -> Path | None:
    bucket, _, key = uri[len(S3) :].partition("/")
    dest = mirror_root(res.settings) / bucket / key
    try:
        head = res.s3.head_object(Bucket=bucket, Key=key)
    except Exception as exc:  # noqa: BLE001 - botocore's ClientError; anything but "gone" is raised
        if str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) in ("404", "NoSuchKey", "NotFound"):
            log.warning("landed object %s vanished before it was fetched", uri)
            return None
        raise
    size, mtime = int(head["ContentLength"]), _mtime_ns(head["LastModified"])
    try:
        stat = dest.stat()
        if stat.st_size == size and stat.st_mtime_ns == mtime:
            return dest
    except FileNotFoundError:
        pass
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    res.s3.download_file(bucket, key, str(part))
    os.utime(part, ns=(mtime, mtime))
    part.replace(dest)
    return dest


def origin(settings: Settings, path: Path) -> str:
    """The file's original location: ``s3://bucket/key`` for a fetched object, else its resolved path."""
    resolved = Path(path).resolve()
    root = mirror_root(settings)
    if resolved.is_relative_to(root):
        bucket, *rest = resolved.relative_to(root).parts
        return f"{S3}{bucket}/{'/'.join(rest)}"
    return str(resolved)
