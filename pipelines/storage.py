"""Where the pipeline keeps bytes: the raw zone, quarantine copies and lake files (local directory or S3 API).

Raw zone: the original bytes of every landed file, content-addressed as ``<feed or _unknown>/<sha256[:2]>/<sha256>``
(local: under ``LAKEHOUSE_RAW_DIR``; S3: in ``LAKEHOUSE_RAW_BUCKET``, versioned and object-locked in production).
An object is written once and never overwritten or deleted: ``put_file`` refuses a key that exists
(:class:`ObjectExists`), local objects are made read-only, and the stored bytes are checked against the SHA-256
they are named by (local: re-hashed while copying; S3: the server verifies the ``x-amz-checksum-sha256`` we send).

Quarantine: a copy of a quarantined raw file under ``<feed>/<sha256>/<original name>`` with ``reason.json`` beside
it (local: ``HOME/quarantine``; S3: ``LAKEHOUSE_QUARANTINE_BUCKET``), so an operator finds the file and the reason
together; each later quarantine decision on the same bytes adds ``reason-2.json``, ``reason-3.json``, ... (the
newest is the current reason; none is ever overwritten). The raw object itself stays where it is.

Lake: derived files (landing/rejected Parquet), written to ``LAKEHOUSE_LAKE_DIR`` or ``s3://LAKEHOUSE_LAKE_BUCKET``.
Lake files may be replaced (re-validation rewrites a file's landing Parquet); only the raw zone is immutable.

The three stores of a run are built once, by ``pipelines.resources.Resources`` (``raw``, ``quarantine``, ``lake``),
over one S3 client.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.settings import Settings

if TYPE_CHECKING:
    from pipelines.resources import Resources

CHUNK = 1 << 20


class StorageError(RuntimeError):
    """A storage operation failed (one-line message)."""


class ObjectExists(StorageError):
    """The key already exists; the raw zone never overwrites."""


def sha256_file(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def raw_key(feed: str | None, sha256: str) -> str:
    return f"{feed or '_unknown'}/{sha256[:2]}/{sha256}"


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client for the configured endpoint (TLS verified against LAKEHOUSE_S3_CA_BUNDLE if set)."""
    import boto3
    from botocore.config import Config

    secret = settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=secret,
        region_name=settings.s3_region,
        verify=str(settings.s3_ca_bundle) if settings.s3_ca_bundle else None,
        config=Config(retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": "path"}),
    )


def _s3_error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


# --- object stores ----------------------------------------------------------------------------------


class Store(ABC):
    """A flat key -> bytes store (a directory or a bucket)."""

    @abstractmethod
    def uri(self, key: str) -> str: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def read_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def put_file(self, key: str, src: Path, sha256: str) -> None:
        """Store ``src`` under ``key`` once; raises ObjectExists if the key is taken, StorageError if the bytes
        read do not hash to ``sha256`` (the source changed while landing)."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, *, overwrite: bool) -> None: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key`` if present. Only for derived objects (landing, rejected): the raw zone refuses it."""


class LocalStore(Store):
    def __init__(self, root: Path, *, read_only_objects: bool) -> None:
        self.root = Path(root)
        self.read_only_objects = read_only_objects

    def path(self, key: str) -> Path:
        return self.root / key

    def uri(self, key: str) -> str:
        return str(self.path(key).resolve())

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def _tmp(self, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return dest.parent / f".{dest.name}.{uuid.uuid4().hex}.tmp"

    def _publish(self, tmp: Path, dest: Path, overwrite: bool) -> None:
        if self.read_only_objects:
            os.chmod(tmp, 0o444)
        try:
            if overwrite:
                os.replace(tmp, dest)
            else:
                os.link(tmp, dest)  # atomic and fails if dest exists: never overwrites
        except FileExistsError:
            raise ObjectExists(f"{dest} exists; refusing to overwrite") from None
        finally:
            tmp.unlink(missing_ok=True)

    def put_file(self, key: str, src: Path, sha256: str) -> None:
        dest = self.path(key)
        if dest.exists():
            raise ObjectExists(f"{dest} exists; refusing to overwrite")
        tmp = self._tmp(dest)
        digest = hashlib.sha256()
        with src.open("rb") as fin, tmp.open("wb") as fout:
            while chunk := fin.read(CHUNK):
                digest.update(chunk)
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        if digest.hexdigest() != sha256:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"{src} changed while it was being landed (SHA-256 differs); try again")
        self._publish(tmp, dest, overwrite=False)

    def put_bytes(self, key: str, data: bytes, *, overwrite: bool) -> None:
        dest = self.path(key)
        if not overwrite and dest.exists():
            raise ObjectExists(f"{dest} exists; refusing to overwrite")
        tmp = self._tmp(dest)
        tmp.write_bytes(data)
        self._publish(tmp, dest, overwrite=overwrite)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)


class S3Store(Store):
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:  # botocore ClientError; 404 means absent
            if _s3_error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError(f"cannot check {self.uri(key)}: {exc}") from exc
        return True

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            raise StorageError(f"cannot read {self.uri(key)}: {exc}") from exc

    def _put(self, key: str, body: Any, sha256: str, overwrite: bool) -> None:
        extra: dict[str, Any] = {"ChecksumSHA256": base64.b64encode(bytes.fromhex(sha256)).decode()}
        if not overwrite:
            extra["IfNoneMatch"] = "*"  # conditional write: the server refuses if the key exists
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
        except Exception as exc:
            code = _s3_error_code(exc)
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise ObjectExists(f"{self.uri(key)} exists; refusing to overwrite") from None
            if code in ("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"):
                raise StorageError(f"{self.uri(key)}: bytes changed in transit (checksum mismatch)") from exc
            raise StorageError(f"cannot write {self.uri(key)}: {exc}") from exc

    def put_file(self, key: str, src: Path, sha256: str) -> None:
        if self.exists(key):
            raise ObjectExists(f"{self.uri(key)} exists; refusing to overwrite")
        with src.open("rb") as body:
            self._put(key, body, sha256, overwrite=False)

    def put_bytes(self, key: str, data: bytes, *, overwrite: bool) -> None:
        if not overwrite and self.exists(key):
            raise ObjectExists(f"{self.uri(key)} exists; refusing to overwrite")
        self._put(key, data, hashlib.sha256(data).hexdigest(), overwrite=overwrite)

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)  # absent keys succeed too
        except Exception as exc:
            raise StorageError(f"cannot delete {self.uri(key)}: {exc}") from exc


# --- quarantine -----------------------------------------------------------------------------------


def quarantine(
    res: Resources, raw_key_: str, feed: str | None, sha256: str, original_name: str, reason: dict[str, Any]
) -> str:
    """Copy a raw object into quarantine and record the decision's reason; returns the copy's URI.

    The copy is idempotent (an existing one, the same bytes by construction of the key, is left as it is). The
    reason is appended to the file's reason records (:func:`add_reason`): a later decision on the same bytes (a
    revalidation, a re-delivery under another name) adds its own record and never replaces an earlier one."""
    store = res.quarantine
    safe_name = Path(original_name).name or "file"
    folder = f"{feed or '_unknown'}/{sha256}"
    key = f"{folder}/{safe_name}"
    if not store.exists(key):
        data = res.raw.read_bytes(raw_key_)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise StorageError(f"raw object {raw_key_} does not match its SHA-256: raw zone damaged")
        store.put_bytes(key, data, overwrite=False)
    add_reason(store, folder, reason)
    return store.uri(key)


def reason_key(folder: str, n: int) -> str:
    """The n-th reason record of a quarantine folder: ``reason.json`` (the first decision), ``reason-2.json``, ..."""
    return f"{folder}/reason.json" if n == 1 else f"{folder}/reason-{n}.json"


def reason_keys(store: Store, folder: str) -> list[str]:
    """A quarantine folder's reason records, oldest first."""
    keys, n = [], 1
    while store.exists(reason_key(folder, n)):
        keys.append(reason_key(folder, n))
        n += 1
    return keys


def add_reason(store: Store, folder: str, reason: dict[str, Any]) -> str:
    """Append ``reason`` as the folder's next reason record (written once, never overwritten); returns its key.

    Every quarantine decision gets a record, so the folder is the decision history beside the bytes (ADR 0165).
    Recording the same decision twice (same run, file and reason: a run redone after a crash) adds nothing."""
    keys = reason_keys(store, folder)
    if keys:
        last = json.loads(store.read_bytes(keys[-1]))
        same = ("run_id", "file", "reason_kind", "reason")
        if all(last.get(k) == reason.get(k) for k in same):
            return keys[-1]
        reason = {**reason, "supersedes": keys[-1].rsplit("/", 1)[1]}
    n = len(keys) + 1
    while True:
        try:
            store.put_bytes(
                reason_key(folder, n), (json.dumps(reason, indent=2, default=str) + "\n").encode(), overwrite=False
            )
            return reason_key(folder, n)
        except ObjectExists:  # a concurrent decision took this number: take the next
            n += 1
