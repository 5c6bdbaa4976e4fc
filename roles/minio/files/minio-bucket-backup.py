#!/usr/bin/python3
# Managed by the cgt_lakehouse `minio` role.
"""Export every version of every object of an S3 server's buckets to a directory, and import it again (ADR 0181).

    minio-bucket-backup export --url URL --out DIR [--ca FILE] [--exclude BUCKET ...]
    minio-bucket-backup import --url URL --in DIR [--ca FILE]

Credentials come from the environment (S3_ACCESS_KEY, S3_SECRET_KEY; S3_REGION, default us-east-1), never from
arguments. `export` (read-only: the backup account suffices) writes DIR/index.json and DIR/objects/<sha256>: for each
bucket its versioning and object-lock configuration, and for each key every version and delete marker in the order
they were written, with size, sha256, content type, user metadata, retention (mode, retain-until) and legal hold.
Identical bytes are stored once. `import` (the root account: it sets retention) replays that history into buckets of
the same names, oldest first, so the newest version is current again: each version is re-put with its original
retention mode and retain-until date when that date is still ahead (an expired retention is not re-applied; the
bucket's default retention then covers the new copy) and its legal hold; delete markers are re-created. Every byte
is checked against its sha256 before it is sent. Progress is appended to DIR/imported.jsonl, so a re-run after a
failure continues where it stopped instead of writing versions twice. Version ids and write times are new ones:
S3 gives no way to set them; index.json keeps the originals.

Standard library only (it runs on the storage host with the system python3). Exit 1 with one line on error.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import ssl
import sys
import tempfile
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
CHUNK = 1024 * 1024
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
FORMAT = 1


class BackupError(Exception):
    pass


# --- S3 requests (signature version 4, path-style) -----------------------------------------------------------------


def _enc(text: str, safe: str = "-_.~") -> str:
    return quote(text, safe=safe)


class S3:
    def __init__(self, url: str, access_key: str, secret_key: str, region: str = "us-east-1", ca: str | None = None):
        self.url = url.rstrip("/")
        self.host = self.url.split("://", 1)[1]
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self.context = ssl.create_default_context(cafile=ca) if self.url.startswith("https") else None

    def _sign(self, method: str, path: str, query: dict, headers: dict, payload_sha256: str) -> dict:
        now = dt.datetime.now(dt.UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        headers = {k.lower(): str(v).strip() for k, v in headers.items()}
        headers.update({"host": self.host, "x-amz-date": stamp, "x-amz-content-sha256": payload_sha256})
        names = sorted(headers)
        canonical = "\n".join(
            [
                method,
                _enc(path, safe="-_.~/"),
                "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(query.items())),
                "".join(f"{n}:{headers[n]}\n" for n in names),
                ";".join(names),
                payload_sha256,
            ]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = f"AWS4{self.secret_key}".encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, SignedHeaders={';'.join(names)}, "
            f"Signature={signature}"
        )
        del headers["host"]
        return headers

    def request(self, method, path, query=None, headers=None, body=None, payload_sha256=EMPTY_SHA256, ok=(200,)):
        """The response (open: read or stream it), or BackupError with the server's error code."""
        query = query or {}
        signed = self._sign(method, path, query, headers or {}, payload_sha256)
        qs = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(query.items()))
        url = self.url + _enc(path, safe="-_.~/") + (f"?{qs}" if qs else "")
        req = urllib.request.Request(url, data=body, method=method, headers=signed)
        try:
            resp = urllib.request.urlopen(req, context=self.context, timeout=300)  # noqa: S310 - URL from the role
        except urllib.error.HTTPError as err:
            if err.code in ok:
                return err
            code = _error_code(err.read())
            raise BackupError(f"{method} {path} {query or ''}: HTTP {err.code} {code}") from None
        except urllib.error.URLError as err:
            raise BackupError(f"{method} {self.url}{path}: {err.reason}") from None
        if resp.status not in ok:
            raise BackupError(f"{method} {path}: HTTP {resp.status}")
        return resp

    def xml(self, path, query=None, ok=(200,)):
        resp = self.request("GET", path, query, ok=ok)
        body = resp.read()
        if not body:
            return resp.status, None
        doc = ET.fromstring(body)
        # Namespace or not depends on how the configuration was stored (MinIO answers both ways): drop it.
        for elem in doc.iter():
            elem.tag = elem.tag.rsplit("}", 1)[-1]
        return resp.status, doc


def _error_code(body: bytes) -> str:
    try:
        doc = ET.fromstring(body)
        return " ".join(t for t in (doc.findtext("Code"), doc.findtext("Message")) if t)
    except ET.ParseError:
        return body[:80].decode(errors="replace")


def _text(elem, name: str, default: str = "") -> str:
    found = elem.find(name)
    return found.text or default if found is not None else default


# --- export -----------------------------------------------------------------------------------------------------


def bucket_config(s3: S3, bucket: str) -> dict:
    """Versioning status and object-lock configuration; None where the account may not read them (an older backup
    policy): the import then leaves that to the server's own bucket (the minio role creates it so)."""
    status, doc = s3.xml(f"/{bucket}", {"versioning": ""}, ok=(200, 403))
    versioning = None if status == 403 else _text(doc, "Status") if doc is not None else ""
    lock: dict | None = {"enabled": False}
    status, doc = s3.xml(f"/{bucket}", {"object-lock": ""}, ok=(200, 403, 404))
    if status == 403:
        lock = None
    elif status == 200 and doc is not None and _text(doc, "ObjectLockEnabled") == "Enabled":
        lock["enabled"] = True
        rule = doc.find("Rule/DefaultRetention")
        if rule is not None:
            lock["mode"] = _text(rule, "Mode")
            for unit in ("Days", "Years"):
                if int(_text(rule, unit) or 0):  # some servers answer the unused unit as 0
                    lock[unit.lower()] = int(_text(rule, unit))
    return {"name": bucket, "versioning": versioning, "object_lock": lock}


def list_versions(s3: S3, bucket: str) -> list[dict]:
    """Every version and delete marker, each key's history oldest first."""
    entries, query = [], {"versions": ""}
    while True:
        _, doc = s3.xml(f"/{bucket}", query)
        for child in doc:
            tag = child.tag
            if tag not in ("Version", "DeleteMarker"):
                continue
            entries.append(
                {
                    "key": _text(child, "Key"),
                    "version_id": _text(child, "VersionId", "null"),
                    "is_latest": _text(child, "IsLatest") == "true",
                    "last_modified": _text(child, "LastModified"),
                    "delete_marker": tag == "DeleteMarker",
                    "size": int(_text(child, "Size", "0")),
                }
            )
        if _text(doc, "IsTruncated") != "true":
            break
        query = {"versions": "", "key-marker": _text(doc, "NextKeyMarker")}
        if _text(doc, "NextVersionIdMarker"):
            query["version-id-marker"] = _text(doc, "NextVersionIdMarker")
    # Oldest first per key: by write time, the current one last on a tie (times have a second's resolution on some
    # servers); otherwise the reverse of the listing's newest-first order (not every server interleaves versions
    # and delete markers in the listing, so the order of the listing alone is not enough).
    by_key: dict[str, list[dict]] = {}
    for entry in entries:
        by_key.setdefault(entry["key"], []).append(entry)
    order = lambda e: (e["last_modified"], e["is_latest"])  # noqa: E731
    return [e for key in sorted(by_key) for e in sorted(reversed(by_key[key]), key=order)]


def _version_query(entry: dict) -> dict:
    return {} if entry["version_id"] == "null" else {"versionId": entry["version_id"]}


def export_version(s3: S3, bucket: str, entry: dict, objects: Path) -> None:
    """Download one version into objects/<sha256> and add its metadata to entry."""
    resp = s3.request("GET", f"/{bucket}/{entry['key']}", _version_query(entry))
    digest, size = hashlib.sha256(), 0
    with tempfile.NamedTemporaryFile(dir=objects, delete=False) as tmp:
        while chunk := resp.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            tmp.write(chunk)
    sha = digest.hexdigest()
    if size != entry["size"]:
        os.unlink(tmp.name)
        raise BackupError(f"{bucket}/{entry['key']} ({entry['version_id']}): read {size} bytes, listed {entry['size']}")
    os.replace(tmp.name, objects / sha)
    headers = resp.headers
    entry.update(
        sha256=sha,
        content_type=headers.get("Content-Type", ""),
        metadata={k.lower()[11:]: v for k, v in headers.items() if k.lower().startswith("x-amz-meta-")},
        retention_mode=headers.get("x-amz-object-lock-mode", ""),
        retain_until=headers.get("x-amz-object-lock-retain-until-date", ""),
        legal_hold=headers.get("x-amz-object-lock-legal-hold", "") == "ON",
    )


def export(s3: S3, out: Path, exclude: list[str]) -> dict:
    objects = out / "objects"
    objects.mkdir(parents=True, exist_ok=True)
    _, doc = s3.xml("/")
    names = sorted(_text(b, "Name") for b in doc.iter("Bucket"))
    index = {"format": FORMAT, "exported_utc": _utc_now(), "url": s3.url, "buckets": []}
    for name in (n for n in names if n not in exclude):
        bucket = bucket_config(s3, name)
        bucket["entries"] = list_versions(s3, name)
        for entry in bucket["entries"]:
            if not entry["delete_marker"]:
                export_version(s3, name, entry, objects)
        index["buckets"].append(bucket)
    tmp = out / "index.json.tmp"
    tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
    tmp.replace(out / "index.json")
    return index


# --- import -----------------------------------------------------------------------------------------------------


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def ensure_bucket(s3: S3, bucket: dict) -> None:
    """Create a missing bucket as it was; refuse an existing one that cannot hold its history (no lock, versioning)."""
    status, _ = s3.xml(f"/{bucket['name']}", {"versioning": ""}, ok=(200, 404))
    # Unknown configuration (the exporting account could not read it): what the versions show.
    entries = bucket.get("entries", [])
    lock = bucket["object_lock"] or {"enabled": any(e.get("retention_mode") or e.get("legal_hold") for e in entries)}
    if bucket["versioning"] is None:
        bucket = {**bucket, "versioning": "Enabled" if any(e["version_id"] != "null" for e in entries) else ""}
    if status == 404:
        headers = {"x-amz-bucket-object-lock-enabled": "true"} if lock["enabled"] else {}
        s3.request("PUT", f"/{bucket['name']}", headers=headers, body=b"")
        if bucket["versioning"] and not lock["enabled"]:
            body = (
                f'<VersioningConfiguration xmlns="{NS[1:-1]}"><Status>{bucket["versioning"]}</Status>'
                "</VersioningConfiguration>"
            ).encode()
            _put_xml(s3, bucket["name"], "versioning", body)
        if lock.get("mode"):
            unit = "Years" if "years" in lock else "Days"
            body = (
                f'<ObjectLockConfiguration xmlns="{NS[1:-1]}"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule>'
                f"<DefaultRetention><Mode>{lock['mode']}</Mode><{unit}>{lock[unit.lower()]}</{unit}>"
                "</DefaultRetention></Rule></ObjectLockConfiguration>"
            ).encode()
            _put_xml(s3, bucket["name"], "object-lock", body)
    now = bucket_config(s3, bucket["name"])
    if lock["enabled"] and not (now["object_lock"] or {}).get("enabled"):
        raise BackupError(f"bucket {bucket['name']}: the backup has object lock, the server's bucket has none")
    if bucket["versioning"] == "Enabled" and now["versioning"] not in ("Enabled", None):
        raise BackupError(f"bucket {bucket['name']}: the backup is versioned, the server's bucket is not")


def _put_xml(s3: S3, bucket: str, sub: str, body: bytes) -> None:
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 - Content-MD5, required here
    headers = {"content-md5": md5, "content-type": "application/xml"}
    s3.request(
        "PUT", f"/{bucket}", {sub: ""}, headers=headers, body=body, payload_sha256=hashlib.sha256(body).hexdigest()
    )


def import_entry(s3: S3, bucket: str, entry: dict, objects: Path) -> str:
    """Re-create one version (or delete marker); returns the new version id."""
    path = f"/{bucket}/{entry['key']}"
    if entry["delete_marker"]:
        resp = s3.request("DELETE", path, ok=(200, 204))
        return resp.headers.get("x-amz-version-id", "")
    file = objects / entry["sha256"]
    sha, md5 = hashlib.sha256(), hashlib.md5()  # noqa: S324 - Content-MD5 is what S3 requires with lock headers
    with file.open("rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
    if sha.hexdigest() != entry["sha256"]:
        raise BackupError(f"{bucket}/{entry['key']}: the exported bytes do not match their sha256")
    headers = {"content-md5": base64.b64encode(md5.digest()).decode(), "content-length": str(file.stat().st_size)}
    # Always set: urllib would otherwise send (and the server store) application/x-www-form-urlencoded.
    headers["content-type"] = entry.get("content_type") or "application/octet-stream"
    headers.update({f"x-amz-meta-{k}": v for k, v in entry.get("metadata", {}).items()})
    until = entry.get("retain_until")
    if entry.get("retention_mode") and until and _parse_time(until) > dt.datetime.now(dt.UTC):
        headers["x-amz-object-lock-mode"] = entry["retention_mode"]
        headers["x-amz-object-lock-retain-until-date"] = until
    if entry.get("legal_hold"):
        headers["x-amz-object-lock-legal-hold"] = "ON"
    with file.open("rb") as body:
        resp = s3.request("PUT", path, headers=headers, body=body, payload_sha256=entry["sha256"])
    return resp.headers.get("x-amz-version-id", "")


def import_(s3: S3, src: Path) -> dict:
    index = json.loads((src / "index.json").read_text())
    if index.get("format") != FORMAT:
        raise BackupError(f"{src}/index.json: format {index.get('format')!r}, expected {FORMAT}")
    progress = src / "imported.jsonl"
    done = set()
    if progress.exists():
        for line in progress.read_text().splitlines():
            rec = json.loads(line)
            done.add((rec["bucket"], rec["key"], rec["version_id"]))
    counts = {}
    with progress.open("a") as log:
        for bucket in index["buckets"]:
            ensure_bucket(s3, bucket)
            n = 0
            for entry in bucket["entries"]:
                ident = (bucket["name"], entry["key"], entry["version_id"])
                if ident not in done:
                    new_id = import_entry(s3, bucket["name"], entry, src / "objects")
                    log.write(
                        json.dumps({"bucket": ident[0], "key": ident[1], "version_id": ident[2], "new": new_id}) + "\n"
                    )
                    log.flush()
                n += 1
            counts[bucket["name"]] = n
    return counts


def summary(index: dict) -> dict:
    """Per bucket: versions, delete markers, bytes, locked versions, versioning and lock configuration."""
    out = {}
    for b in index["buckets"]:
        versions = [e for e in b["entries"] if not e["delete_marker"]]
        out[b["name"]] = {
            "versions": len(versions),
            "delete_markers": len(b["entries"]) - len(versions),
            "bytes": sum(e["size"] for e in versions),
            "locked": sum(1 for e in versions if e.get("retention_mode")),
            "versioning": b["versioning"],
            "object_lock": b["object_lock"],
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["export", "import"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--ca", help="CA certificate file for https")
    parser.add_argument("--out", type=Path, help="export: directory to write (created)")
    parser.add_argument("--in", dest="src", type=Path, help="import: directory an export wrote")
    parser.add_argument("--exclude", action="append", default=[], help="export: bucket to leave out")
    args = parser.parse_args(argv)
    try:
        key, secret = os.environ.get("S3_ACCESS_KEY"), os.environ.get("S3_SECRET_KEY")
        if not key or not secret:
            raise BackupError("S3_ACCESS_KEY and S3_SECRET_KEY must be set in the environment")
        s3 = S3(args.url, key, secret, os.environ.get("S3_REGION", "us-east-1"), args.ca)
        if args.action == "export":
            if not args.out:
                raise BackupError("export needs --out DIR")
            result = summary(export(s3, args.out, args.exclude))
        else:
            if not args.src or not (args.src / "index.json").is_file():
                raise BackupError("import needs --in DIR holding an export's index.json")
            imported = import_(s3, args.src)
            result = {
                name: {**counts, "imported": imported[name]}
                for name, counts in summary(json.loads((args.src / "index.json").read_text())).items()
            }
    except (BackupError, OSError, ET.ParseError) as err:
        print(f"minio-bucket-backup: {args.action}: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
