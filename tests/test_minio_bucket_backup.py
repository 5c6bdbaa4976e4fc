"""roles/minio/files/minio-bucket-backup.py against a real S3 server (moto's, tests/fixtures/s3.py): every version,
delete marker, retention and legal hold goes out and comes back; bad input fails with one line."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import uuid
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "roles" / "minio" / "files" / "minio-bucket-backup.py"
spec = importlib.util.spec_from_file_location("minio_bucket_backup", SCRIPT)
mbb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mbb)


@pytest.fixture
def env(monkeypatch, s3_server):
    monkeypatch.setenv("S3_ACCESS_KEY", s3_server.access_key_id)
    monkeypatch.setenv("S3_SECRET_KEY", s3_server.secret_access_key)
    return s3_server


def history(client, bucket: str) -> list[tuple]:
    """(key, sha256 or 'DELETE', is_latest, (lock mode, retain until, legal hold)) of every version, oldest first."""
    listing = client.list_object_versions(Bucket=bucket)
    items = [(v["Key"], v["LastModified"], v["VersionId"], v["IsLatest"], False) for v in listing.get("Versions", [])]
    items += [
        (d["Key"], d["LastModified"], d["VersionId"], d["IsLatest"], True) for d in listing.get("DeleteMarkers", [])
    ]
    out = []
    for key, _, vid, latest, marker in sorted(items, key=lambda i: (i[0], i[1], i[3])):
        if marker:
            out.append((key, "DELETE", latest, None))
        else:
            got = client.get_object(Bucket=bucket, Key=key, VersionId=vid)
            lock = (
                got.get("ObjectLockMode"),
                got.get("ObjectLockRetainUntilDate"),
                got.get("ObjectLockLegalHoldStatus"),
            )
            out.append((key, hashlib.sha256(got["Body"].read()).hexdigest(), latest, lock))
    return out


def run(*args: str) -> int:
    return mbb.main(list(args))


def test_round_trip_keeps_versions_locks_and_markers(env, tmp_path, capsys):
    round_trip(env.client(), env.endpoint_url, tmp_path, capsys, lambda role: None)


def round_trip(c, url: str, tmp_path: Path, capsys, credentials) -> None:
    """Versions, a delete marker, retention, legal hold, metadata: exported, imported into new buckets, compared.
    credentials(role) puts the account for 'export' (read-only) or 'import' (root) into the environment."""
    tag = uuid.uuid4().hex[:8]
    raw, lake, skip = f"raw-{tag}", f"lake-{tag}", f"backups-{tag}"
    c.create_bucket(Bucket=raw, ObjectLockEnabledForBucket=True)
    c.put_object_lock_configuration(
        Bucket=raw,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}},
        },
    )
    c.create_bucket(Bucket=lake)
    c.create_bucket(Bucket=skip)
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=9)).replace(microsecond=0)
    c.put_object(
        Bucket=raw,
        Key="a/file one.csv",
        Body=b"v1",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=until,
        Metadata={"sha256": "x"},
        ContentType="text/csv",
    )
    c.put_object(Bucket=raw, Key="a/file one.csv", Body=b"v2 newer")
    c.put_object(Bucket=raw, Key="b.json", Body=b"{}", ObjectLockLegalHoldStatus="ON")
    c.put_object(Bucket=raw, Key="gone.txt", Body=b"soon deleted")
    c.delete_object(Bucket=raw, Key="gone.txt")
    c.put_object(Bucket=lake, Key="data/part-0.parquet", Body=b"PAR1" * 1000)
    c.put_object(Bucket=skip, Key="x", Body=b"not exported")
    before = {raw: history(c, raw), lake: history(c, lake)}

    out = tmp_path / "export"
    credentials("export")
    assert run("export", "--url", url, "--out", str(out), "--exclude", skip) == 0
    counts = json.loads(capsys.readouterr().out)
    locked = sum(1 for h in before[raw] if h[3] and h[3][0])
    assert locked >= 1
    assert counts[raw] == {
        "versions": 4,
        "delete_markers": 1,
        "bytes": 2 + 8 + 2 + 12,
        "locked": locked,
        "versioning": "Enabled",
        "object_lock": {"enabled": True, "mode": "GOVERNANCE", "days": 30},
    }
    assert skip not in counts
    index = json.loads((out / "index.json").read_text())
    bucket = next(b for b in index["buckets"] if b["name"] == raw)
    assert bucket["object_lock"] == {"enabled": True, "mode": "GOVERNANCE", "days": 30}
    first = bucket["entries"][0]
    assert (first["key"], first["retention_mode"], first["metadata"]) == (
        "a/file one.csv",
        "GOVERNANCE",
        {"sha256": "x"},
    )
    assert mbb._parse_time(first["retain_until"]) == until

    # Restore into a server without those buckets (a fresh site): rename them as the import sees them.
    for b in index["buckets"]:
        b["name"] = b["name"].replace(tag, tag + "r")
    (out / "index.json").write_text(json.dumps(index))
    credentials("import")
    assert run("import", "--url", url, "--in", str(out)) == 0
    capsys.readouterr()
    raw2, lake2 = raw.replace(tag, tag + "r"), lake.replace(tag, tag + "r")
    assert history(c, raw2) == before[raw]
    assert history(c, lake2) == before[lake]
    rule = c.get_object_lock_configuration(Bucket=raw2)["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert (rule["Mode"], rule["Days"]) == ("GOVERNANCE", 30)
    # history() compared every version's retention mode, retain-until date and legal hold, read back from the server.
    assert any(h[3] and h[3][2] == "ON" for h in history(c, raw2))

    # A second import continues from its progress file: nothing is written twice.
    assert run("import", "--url", url, "--in", str(out)) == 0
    assert history(c, raw2) == before[raw]


def test_tampered_export_is_refused_before_writing(env, tmp_path, capsys):
    c = env.client()
    name = f"q-{uuid.uuid4().hex[:8]}"
    c.create_bucket(Bucket=name)
    c.put_object(Bucket=name, Key="k", Body=b"original")
    out = tmp_path / "export"
    assert run("export", "--url", env.endpoint_url, "--out", str(out)) == 0
    capsys.readouterr()
    entry = next(b for b in json.loads((out / "index.json").read_text())["buckets"] if b["name"] == name)["entries"][0]
    (out / "objects" / entry["sha256"]).write_bytes(b"tampered")
    c.delete_object(Bucket=name, Key="k")
    assert run("import", "--url", env.endpoint_url, "--in", str(out)) == 1
    assert "do not match their sha256" in capsys.readouterr().err
    assert "Contents" not in c.list_objects_v2(Bucket=name)


def test_bad_input_one_line(env, tmp_path, capsys, monkeypatch):
    assert run("import", "--url", env.endpoint_url, "--in", str(tmp_path)) == 1
    assert capsys.readouterr().err.count("\n") == 1
    # (moto does not check signatures: a wrong secret is tested against the real server by the minio scenario.)
    assert run("export", "--url", "http://127.0.0.1:9", "--out", str(tmp_path / "x")) == 1
    err = capsys.readouterr().err
    assert "Connection refused" in err and err.count("\n") == 1
    monkeypatch.delenv("S3_SECRET_KEY")
    assert run("export", "--url", env.endpoint_url, "--out", str(tmp_path / "x")) == 1
    assert "S3_SECRET_KEY" in capsys.readouterr().err
