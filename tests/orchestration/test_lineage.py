"""Lineage events: valid per the OpenLineage schema, named per its conventions, delivered by each transport."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from pipelines import lineage
from pipelines.settings import Settings
from tests.fixtures.net import free_port


def _events(settings: Settings) -> list[dict]:
    return [json.loads(line) for line in Path(settings.lineage_file).read_text().splitlines()]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


def test_step_events_are_valid_and_linked_to_the_parent_run(settings, openlineage_validator, tmp_path):
    ol = lineage.Lineage(settings)
    parent = lineage.new_run_id()
    ol.emit(lineage.RunState.START, lineage.PARENT_JOB, parent, job_type="JOB")
    with ol.step("lakehouse.ingest", parent) as step:
        step.inputs = [lineage.file_dataset(tmp_path / "landing" / "mes" / "batches_1.csv")]
        step.outputs = [
            lineage.file_dataset("s3://raw/mes__batches/ab/abcd", rows=12, fields=(("batch_id", "VARCHAR"),)),
        ]
    with pytest.raises(RuntimeError), ol.step("lakehouse.validate", parent) as step:
        step.inputs = [lineage.file_dataset("s3://raw/x", assertions=(("not_null", False, "batch_id"),))]
        raise RuntimeError("suite missing")
    ol.emit(lineage.RunState.COMPLETE, lineage.PARENT_JOB, parent, job_type="JOB")

    events = _events(settings)
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("lakehouse.run", "START"),
        ("lakehouse.ingest", "START"),
        ("lakehouse.ingest", "COMPLETE"),
        ("lakehouse.validate", "START"),
        ("lakehouse.validate", "FAIL"),
        ("lakehouse.run", "COMPLETE"),
    ]
    assert ol.emitted == 6 and not ol.errors
    for event in events:
        assert openlineage_validator(event) == [], event
    ingest_done = events[2]
    assert ingest_done["run"]["facets"]["parent"]["run"]["runId"] == parent
    assert ingest_done["outputs"][0]["namespace"] == "s3://raw"
    assert ingest_done["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 12
    assert ingest_done["inputs"][0]["namespace"] == f"file://{socket.gethostname()}"
    assert ingest_done["inputs"][0]["name"].endswith("/landing/mes/batches_1.csv")
    assert events[4]["run"]["facets"]["errorMessage"]["message"] == "RuntimeError: suite missing"


def test_the_validator_rejects_a_broken_event(settings, openlineage_validator):
    ol = lineage.Lineage(settings)
    ol.emit(lineage.RunState.START, "lakehouse.ingest", lineage.new_run_id())
    event = _events(settings)[0]
    event["eventTime"] = "yesterday"
    event["run"]["runId"] = "not-a-uuid"
    assert len(openlineage_validator(event)) >= 2


def test_dataset_names_follow_the_naming_conventions(tmp_path):
    pg = lineage.postgres_dataset("host=db.example port=5433 dbname=marts user=x", "marts", "batch_overview")
    assert (pg.namespace, pg.name) == ("postgres://db.example:5433", "marts.marts.batch_overview")
    url = lineage.postgres_dataset("postgresql://u@db:5432/marts", "marts", "kpi")
    assert (url.namespace, url.name) == ("postgres://db:5432", "marts.marts.kpi")
    duck = lineage.duckdb_dataset(tmp_path / "marts.duckdb", "main", "kpi")
    assert (duck.namespace, duck.name) == (f"duckdb://{tmp_path / 'marts.duckdb'}", "marts.main.kpi")
    s3 = lineage.file_dataset("s3://lake/landing/mes__batches/abc.parquet")
    assert (s3.namespace, s3.name) == ("s3://lake", "landing/mes__batches/abc.parquet")


def test_completed_step_carries_the_tool_timings(settings, openlineage_validator):
    from datetime import UTC, datetime, timedelta

    ol = lineage.Lineage(settings)
    start = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    ol.completed_step(
        "lakehouse.dbt.stg_mes__batches",
        lineage.new_run_id(),
        started_at=start,
        ended_at=start + timedelta(seconds=3),
        inputs=[lineage.file_dataset("/lake/landing/mes__batches")],
        outputs=[lineage.duckdb_dataset("/x/catalog.duckdb", "main", "stg_mes__batches", rows=5)],
    )
    start_ev, done = _events(settings)
    assert (start_ev["eventTime"], done["eventTime"]) == (start.isoformat(), (start + timedelta(seconds=3)).isoformat())
    assert done["eventType"] == "COMPLETE" and start_ev["run"]["runId"] == done["run"]["runId"]
    assert all(openlineage_validator(e) == [] for e in (start_ev, done))


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, dict, str]] = []

    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, json.loads(body), self.headers.get("Authorization", "")))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args):  # keep test output clean
        pass


def test_http_transport_posts_to_the_lineage_api_with_the_token(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = Settings(
            home=tmp_path,
            lineage_transport="http",
            marquez_url=f"http://127.0.0.1:{server.server_port}",
            marquez_api_key="s3cret-token",
        )
        ol = lineage.Lineage(settings)
        ol.emit(lineage.RunState.START, "lakehouse.ingest", lineage.new_run_id())
    finally:
        server.shutdown()
    path, event, auth = _Collector.received[-1]
    assert path == "/api/v1/lineage" and event["job"]["name"] == "lakehouse.ingest"
    assert auth == "Bearer s3cret-token"
    assert ol.emitted == 1


def test_an_unreachable_lineage_backend_is_reported_not_fatal(tmp_path):
    port = free_port()  # nothing listens there
    settings = Settings(home=tmp_path, lineage_transport="http", marquez_url=f"http://127.0.0.1:{port}")
    ol = lineage.Lineage(settings)
    run_id = lineage.new_run_id()
    ol.emit(lineage.RunState.START, "lakehouse.ingest", run_id)
    ol.emit(lineage.RunState.COMPLETE, "lakehouse.ingest", run_id)  # not retried: the backend is known down
    assert ol.emitted == 0 and ol.undelivered == 2
    assert len(ol.errors) == 1 and "lakehouse.ingest START not delivered" in ol.errors[0]
    kept = [json.loads(line) for line in ol.spool.read_text().splitlines()]
    assert [e["eventType"] for e in kept] == ["START", "COMPLETE"]  # nothing lost: replayable later
