"""Exports landing in a bucket/prefix on the object store (LAKEHOUSE_LANDING_BACKEND=s3), against a real S3 API.

The sensor lists the prefix, the settle window holds back objects written too recently (CLI, schedule and sensor
scans alike), a run lands the objects with their s3:// origin in the manifest, and a re-scan lands nothing twice.
"""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest

from pipelines import control, landing, runner
from pipelines.defs import ingest
from pipelines.defs.resources import LakehouseResource
from pipelines.generate import generate
from pipelines.resources import Resources
from pipelines.settings import Settings

BUCKET = "landing-tests"


@pytest.fixture
def bucket_settings(s3_server, tmp_path, monkeypatch) -> Settings:
    if BUCKET not in _buckets(s3_server):
        s3_server.create_bucket(BUCKET)
    for obj in s3_server.client().list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3_server.client().delete_object(Bucket=BUCKET, Key=obj["Key"])
    env = {
        "LAKEHOUSE_LANDING_BACKEND": "s3",
        "LAKEHOUSE_LANDING_BUCKET": BUCKET,
        "LAKEHOUSE_LANDING_PREFIX": "site-a/",
        "LAKEHOUSE_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "LAKEHOUSE_S3_ACCESS_KEY_ID": s3_server.access_key_id,
        "LAKEHOUSE_S3_SECRET_ACCESS_KEY": s3_server.secret_access_key,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings(home=tmp_path / "home")


def _buckets(s3_server) -> set[str]:
    return {b["Name"] for b in s3_server.client().list_buckets()["Buckets"]}


def _upload(s3_server, source: Path, prefix: str = "site-a/") -> list[str]:
    keys = []
    for f in sorted(p for p in source.rglob("*") if p.is_file()):
        key = prefix + f.relative_to(source).as_posix()
        s3_server.client().upload_file(str(f), BUCKET, key)
        keys.append(key)
    return keys


def _clock_ahead(monkeypatch, seconds: float) -> None:
    real = time.time
    monkeypatch.setattr(landing.time, "time", lambda: real() + seconds)


def test_settle_window_and_prefix_apply_to_the_bucket(bucket_settings, s3_server, monkeypatch, tmp_path):
    src = tmp_path / "src" / "mes"
    src.mkdir(parents=True)
    (src / "batches_2026-01.csv").write_text("batch_id\nB1\n")
    (src / ".batches_2026-02.csv.part").write_text("half written")
    _upload(s3_server, src.parent)
    _upload(s3_server, src.parent, prefix="site-b/")  # another site's prefix: not ours
    monkeypatch.setenv("LAKEHOUSE_LANDING_SETTLE_SECONDS", "30")
    settings = Settings(home=bucket_settings.home)

    assert landing.scan(settings) == {}, "just written: the settle window holds it back"
    assert runner.landing_files(settings) == []  # what `lakehouse run` and the schedule land
    _clock_ahead(monkeypatch, 60)
    assert list(landing.scan(settings)) == [f"s3://{BUCKET}/site-a/mes/batches_2026-01.csv"]


def test_sensor_requests_new_objects_once(bucket_settings, s3_server, tmp_path):
    src = tmp_path / "src" / "mes"
    src.mkdir(parents=True)
    (src / "batches_2026-01.csv").write_text("batch_id\nB1\n")
    _upload(s3_server, src.parent)
    lakehouse = LakehouseResource(home=str(bucket_settings.home))

    ctx = dg.build_sensor_context(resources={"lakehouse": lakehouse})
    request = ingest.new_landing_files(ctx)
    assert isinstance(request, dg.RunRequest)
    assert request.run_config["ops"]["raw_files"]["config"]["paths"] == [
        f"s3://{BUCKET}/site-a/mes/batches_2026-01.csv"
    ]
    again = ingest.new_landing_files(dg.build_sensor_context(cursor=ctx.cursor, resources={"lakehouse": lakehouse}))
    assert isinstance(again, dg.SkipReason)


def test_objects_land_with_their_s3_origin_once(bucket_settings, s3_server, tmp_path):
    export = tmp_path / "export"
    generate(bucket_settings, export, scale=1, seed=5, fault_rate=0.0)
    keys = _upload(s3_server, export)

    first = runner.run(bucket_settings, ("ingest", "validate"), "test")
    assert first.status == "succeeded", first.error
    assert first.files["landed"] == len(keys) and first.files["quarantined"] == 0
    files = control.file_outcomes(Resources.of(bucket_settings).control)
    assert sorted(f["path"] for f in files) == sorted(f"s3://{BUCKET}/{k}" for k in keys)
    assert {f["outcome"] for f in files} == {"accepted"}

    # A re-scan lands nothing twice: unchanged objects are not even fetched again (size and LastModified match).
    again = runner.run(bucket_settings, ("ingest",), "test")
    assert again.files["unchanged"] == len(keys) and again.files["landed"] == 0

    # The sensor's paths (s3:// URIs) land the same way: a changed object is a new delivery.
    s3_server.client().put_object(Bucket=BUCKET, Key=keys[0], Body=Path(export, keys[0][7:]).read_bytes() + b"\n")
    uri = f"s3://{BUCKET}/{keys[0]}"
    third = runner.run(bucket_settings, ("ingest",), "test", paths=landing.fetch(bucket_settings, [uri]))
    assert third.files["landed"] == 1
    assert third._inputs[0]["file"] == uri
