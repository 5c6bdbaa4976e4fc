"""Land -> raw zone -> validate: outcomes, raw immutability, landing Parquet, on every backend."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipelines import control, storage
from pipelines.ingest import land
from pipelines.resources import Resources
from pipelines.settings import Settings
from pipelines.validate import validate_pending

from .conftest import fixture_files


def _outcomes(settings: Settings) -> dict[str, dict]:
    return {f"{f['source_system']}/{f['file']}": f for f in control.file_outcomes(control.engine(settings))}


def _read_parquet(settings: Settings, uri: str):
    if uri.startswith("s3://"):
        bucket, key = uri[5:].split("/", 1)
        data = storage.s3_client(settings).get_object(Bucket=bucket, Key=key)["Body"].read()
        return pq.read_table(io.BytesIO(data))
    return pq.read_table(uri)


def _check_pipeline(settings: Settings) -> None:
    landed = land(settings, [settings.landing_dir], "run-1")
    expected = fixture_files()
    assert len(landed) == len(expected)
    raw = Resources(settings).raw
    for f in landed:
        data = expected[f"{f.source_system}/{f.original_name}"][0]
        assert f.sha256 == hashlib.sha256(data).hexdigest()
        # the raw object holds exactly the landed bytes
        key = storage.raw_key(f.feed, f.sha256)
        assert raw.read_bytes(key) == data

    verdicts = validate_pending(settings, "run-1")
    assert {v.outcome for v in verdicts} <= {"accepted", "quarantined"}
    outcomes = _outcomes(settings)
    for rel, (_data, outcome, kind) in expected.items():
        got = outcomes[rel]
        assert got["outcome"] == outcome, (rel, got["reason"])
        assert got["reason_kind"] == kind, (rel, got["reason"])
        if outcome == "quarantined":
            assert got["reason"] and got["quarantine_uri"]
    assert not control.pending(control.engine(settings))

    # accepted rows: registry columns + lineage, timestamps converted to UTC, row-level policy applied
    qc = outcomes["lims/qc_results_2026-01.csv"]
    assert (qc["rows_accepted"], qc["rows_rejected"]) == (2, 1)
    assert "analyst_id_missing" in qc["reason"]
    rejected = _read_parquet(settings, qc["rejected_uri"]).to_pylist()
    assert [r["_source_row"] for r in rejected] == [3]
    assert "analyst_id_missing" in rejected[0]["_reject_reasons"]

    br = outcomes["bioreactor/BR-XURI-01_B-1_expansion.csv"]
    table = _read_parquet(settings, br["landing_uri"])
    rows = table.to_pylist()
    assert len(rows) == 3 * 8 and br["rows_flagged"] == 1
    first = rows[0]
    assert first["equipment_id"] == "BR-XURI-01" and first["batch_id"] == "B-1"
    assert first["ts_utc"].isoformat() == "2026-01-09T10:00:00+00:00"  # 11:00+01:00
    assert first["_source_sha256"] == br["sha256"] and first["_ingest_run_id"] == "run-1"
    flagged = [r for r in rows if r["_dq_flags"]]
    assert [(r["param"], r["_source_row"], r["value"], r["_dq_flags"]) for r in flagged] == [
        ("ph", 2, None, "ph_missing")
    ]

    an = outcomes["analyzer/samples_B-1.parquet"]
    assert (an["rows_accepted"], an["rows_flagged"], an["rows_rejected"]) == (2, 1, 2)
    reasons = {r["_source_row"]: r["_reject_reasons"] for r in _read_parquet(settings, an["rejected_uri"]).to_pylist()}
    assert reasons == {3: "impossible_value", 4: "unknown_instrument"}

    # the HTML report exists for every file
    for f in outcomes.values():
        if f["outcome"] != "duplicate":
            assert Path(f["report_uri"]).read_text().startswith("<!doctype html>")

    # second ingest of the same bytes: a no-op reported as duplicate
    before = len(outcomes)
    again = land(settings, [settings.landing_dir], "run-2")
    assert {f.outcome for f in again} == {"duplicate"} and not any(f.recorded for f in again)
    assert validate_pending(settings, "run-2") == []
    assert len(_outcomes(settings)) == before


def test_local_backends(local_settings: Settings) -> None:
    _check_pipeline(local_settings)
    raw_files = [p for p in Path(local_settings.raw_dir).rglob("*") if p.is_file()]
    # one object per distinct content, named by its hash, read-only
    assert len(raw_files) == len(fixture_files()) - 1
    for p in raw_files:
        assert hashlib.sha256(p.read_bytes()).hexdigest() == p.name
        assert p.stat().st_mode & 0o222 == 0
    for feed_dir in (Path(local_settings.lake_dir) / "landing").iterdir():
        assert (feed_dir / "_schema.parquet").exists()
    assert (Path(local_settings.home) / "validation" / "index.html").exists()


def test_s3_backends(s3_server, tmp_path: Path, landing: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    raw, quarantine, lake = f"raw-{suffix}", f"quarantine-{suffix}", f"lake-{suffix}"
    s3_server.create_bucket(raw, object_lock=True)
    s3_server.create_bucket(quarantine)
    s3_server.create_bucket(lake)
    settings = Settings(
        home=tmp_path / "home",
        landing_dir=landing,
        raw_backend="s3",
        lake_backend="s3",
        raw_bucket=raw,
        quarantine_bucket=quarantine,
        lake_bucket=lake,
        s3_endpoint_url=s3_server.endpoint_url,
        s3_access_key_id=s3_server.access_key_id,
        s3_secret_access_key=s3_server.secret_access_key,
    )
    _check_pipeline(settings)
    client = s3_server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=raw)["Contents"]]
    assert len(keys) == len(fixture_files()) - 1
    for key in keys:
        body = client.get_object(Bucket=raw, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == key.rsplit("/", 1)[1]
    q = [o["Key"] for o in client.list_objects_v2(Bucket=quarantine)["Contents"]]
    assert any(k.endswith("/reason.json") for k in q)
    reason = json.loads(client.get_object(Bucket=quarantine, Key=next(k for k in q if "reason" in k))["Body"].read())
    assert reason["reason_kind"]


def test_raw_store_refuses_overwrite_local(tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_bytes(b"x,y\n1,2\n")
    sha, _ = storage.sha256_file(src)
    store = storage.LocalStore(tmp_path / "raw", read_only_objects=True)
    store.put_file("f/ab/" + sha, src, sha)
    other = tmp_path / "b.csv"
    other.write_bytes(b"different")
    with pytest.raises(storage.ObjectExists):
        store.put_file("f/ab/" + sha, other, sha)
    assert store.read_bytes("f/ab/" + sha) == b"x,y\n1,2\n"
    with pytest.raises(storage.StorageError):  # bytes that do not match the name are never stored
        store.put_file("f/cd/" + sha, other, sha)


def test_raw_store_refuses_overwrite_s3(s3_server, tmp_path: Path) -> None:
    bucket = f"raw-{uuid.uuid4().hex[:8]}"
    s3_server.create_bucket(bucket, object_lock=True)
    store = storage.S3Store(s3_server.client(), bucket)
    src = tmp_path / "a.csv"
    src.write_bytes(b"x,y\n1,2\n")
    sha, _ = storage.sha256_file(src)
    store.put_file(sha, src, sha)
    other = tmp_path / "b.csv"
    other.write_bytes(b"different")
    with pytest.raises(storage.ObjectExists):
        store.put_file(sha, other, sha)
    assert store.read_bytes(sha) == b"x,y\n1,2\n"


def _assert_append_only(eng: sa.Engine) -> None:
    with eng.begin() as conn:
        seq = control.add_manifest_row(
            conn,
            {
                "run_id": "r",
                "received_at": control.utcnow(),
                "source_system": "lims",
                "feed": "lims__qc_results",
                "instrument_id": None,
                "original_name": "x.csv",
                "original_path": "/x.csv",
                "sha256": "0" * 64,
                "size_bytes": 1,
                "raw_key": "k",
                "raw_uri": "u",
            },
        )
        control.add_outcome(
            conn,
            {
                "manifest_seq": seq,
                "sha256": "0" * 64,
                "outcome": "accepted",
                "run_id": "r",
                "decided_at": control.utcnow(),
            },
        )
        control.add_checks(
            conn,
            [
                {
                    "original_path": "/landing/x.csv",
                    "size_bytes": 1,
                    "mtime_ns": 1,
                    "sha256": "0" * 64,
                    "manifest_seq": seq,
                    "full_rehash": True,
                    "run_id": "r",
                    "hashed_at": control.utcnow(),
                }
            ],
        )
    for table in control.APPEND_ONLY_TABLES:
        for stmt in (f"UPDATE {table} SET run_id = 'changed'", f"DELETE FROM {table}"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), eng.begin() as conn:
                conn.exec_driver_sql(stmt)
    if eng.dialect.name == "postgresql":
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), eng.begin() as conn:
            conn.exec_driver_sql("TRUNCATE file_outcomes")
    assert control.outcome_counts(eng)["accepted"] == 1


def test_control_append_only_sqlite(tmp_path: Path) -> None:
    _assert_append_only(control.engine(Settings(home=tmp_path)))


@pytest.mark.postgres
def test_control_append_only_postgres(postgres_server, tmp_path: Path) -> None:
    dsn = postgres_server.create_database("control_append_only")
    url = f"postgresql+psycopg://{postgres_server.superuser}@{postgres_server.host}:{postgres_server.port}/control_append_only"
    assert "control_append_only" in dsn
    _assert_append_only(control.engine(Settings(home=tmp_path, control_db_url=url)))


@pytest.mark.postgres
def test_pipeline_with_postgres_control_db(postgres_server, tmp_path: Path, landing: Path) -> None:
    postgres_server.create_database("control_pipeline")
    url = f"postgresql+psycopg://{postgres_server.superuser}@{postgres_server.host}:{postgres_server.port}/control_pipeline"
    _check_pipeline(Settings(home=tmp_path / "home", landing_dir=landing, control_db_url=url))
