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
    """A lineage endpoint: answers each POST with the next status of `answers` (then 201) and records the event."""

    received: list[tuple[str, dict, str]] = []
    answers: list[int] = []

    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = self.answers.pop(0) if self.answers else 201
        if status < 300:
            self.received.append((self.path, json.loads(body), self.headers.get("Authorization", "")))
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/oauth2/sign_in")
        self.end_headers()

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def collector():
    _Collector.received, _Collector.answers = [], []
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, _Collector
    server.shutdown()


def test_http_transport_posts_to_the_lineage_api_with_the_token(tmp_path, collector):
    server, endpoint = collector
    settings = Settings(
        home=tmp_path,
        lineage_transport="http",
        marquez_url=f"http://127.0.0.1:{server.server_port}",
        marquez_api_key="s3cret-token",
    )
    ol = lineage.Lineage(settings)
    ol.emit(lineage.RunState.START, "lakehouse.ingest", lineage.new_run_id())
    path, event, auth = endpoint.received[-1]
    assert path == "/api/v1/lineage" and event["job"]["name"] == "lakehouse.ingest"
    assert auth == "Bearer s3cret-token"
    assert ol.emitted == 1 and ol.undelivered == 0
    assert lineage.waiting(settings) == {"waiting": 0, "rejected": 0}


def test_an_unreachable_lineage_backend_is_reported_not_fatal(tmp_path):
    port = free_port()  # nothing listens there
    settings = Settings(
        home=tmp_path, lineage_transport="http", marquez_url=f"http://127.0.0.1:{port}", lineage_http_retries=1
    )
    ol = lineage.Lineage(settings)
    run_id = lineage.new_run_id()
    ol.emit(lineage.RunState.START, "lakehouse.ingest", run_id)
    ol.emit(lineage.RunState.COMPLETE, "lakehouse.ingest", run_id)  # not retried: the backend is known down
    assert ol.emitted == 0 and ol.undelivered == 2
    assert len(ol.errors) == 1 and "lakehouse.ingest START not delivered" in ol.errors[0]
    kept = [json.loads(line) for line in ol.spool.read_text().splitlines()]
    assert [e["eventType"] for e in kept] == ["START", "COMPLETE"]  # nothing lost: replayable later
    assert lineage.waiting(settings) == {"waiting": 2, "rejected": 0}


def test_waiting_events_are_sent_first_and_in_order_once_the_server_answers(tmp_path, collector):
    server, endpoint = collector
    settings = Settings(
        home=tmp_path,
        lineage_transport="http",
        marquez_url=f"http://127.0.0.1:{server.server_port}",
        lineage_http_retries=0,
    )
    first = lineage.Lineage(settings)
    endpoint.answers = [503]  # the server is unavailable for the first run's first try
    first_run = lineage.new_run_id()
    first.emit(lineage.RunState.START, "lakehouse.ingest", first_run)
    first.emit(lineage.RunState.COMPLETE, "lakehouse.ingest", first_run)
    assert first.undelivered == 2 and "HTTP 503" in first.errors[0]
    assert endpoint.received == []
    second = lineage.Lineage(settings)  # a later run: the backlog goes first, oldest first
    second.emit(lineage.RunState.START, "lakehouse.validate", lineage.new_run_id())
    sent = [(e["job"]["name"], e["eventType"]) for _, e, _ in endpoint.received]
    assert sent == [("lakehouse.ingest", "START"), ("lakehouse.ingest", "COMPLETE"), ("lakehouse.validate", "START")]
    assert second.emitted == 3 and second.undelivered == 0
    assert lineage.waiting(settings) == {"waiting": 0, "rejected": 0}


def test_a_redirect_to_sign_in_is_not_a_delivery(tmp_path, collector):
    server, endpoint = collector
    endpoint.answers = [302]
    settings = Settings(home=tmp_path, lineage_transport="http", marquez_url=f"http://127.0.0.1:{server.server_port}")
    ol = lineage.Lineage(settings)
    ol.emit(lineage.RunState.START, "lakehouse.ingest", lineage.new_run_id())
    assert ol.undelivered == 1 and "HTTP 302 to /oauth2/sign_in" in ol.errors[0]
    assert lineage.waiting(settings)["waiting"] == 1


def test_an_event_the_server_refuses_for_good_is_kept_aside_and_does_not_block(tmp_path, collector):
    server, endpoint = collector
    endpoint.answers = [422]
    settings = Settings(home=tmp_path, lineage_transport="http", marquez_url=f"http://127.0.0.1:{server.server_port}")
    ol = lineage.Lineage(settings)
    run_id = lineage.new_run_id()
    ol.emit(lineage.RunState.START, "lakehouse.ingest", run_id)
    ol.emit(lineage.RunState.COMPLETE, "lakehouse.ingest", run_id)
    assert [e["eventType"] for _, e, _ in endpoint.received] == ["COMPLETE"]
    assert lineage.waiting(settings) == {"waiting": 0, "rejected": 1}
    (kept,) = [json.loads(line) for line in ol.spool.with_name("rejected.jsonl").read_text().splitlines()]
    assert kept["status"] == 422 and kept["event"]["eventType"] == "START"


@pytest.mark.parametrize("deployed", [False, True])
def test_validation_outputs_are_the_landing_datasets_dbt_reads(tmp_path, deployed):
    """raw file -> validate -> landing -> dbt joins up only if validation names its outputs as dbt's sources do."""
    from types import SimpleNamespace

    from pipelines import duck
    from pipelines.transform import _source_dataset

    s3 = {"lake_backend": "s3", "lake_bucket": "lake", "s3_endpoint_url": "https://minio.example:9000"}
    s3 |= {"s3_access_key_id": "k", "s3_secret_access_key": "s"}
    settings = Settings(home=tmp_path, **(s3 if deployed else {}))
    verdicts = [
        SimpleNamespace(
            feed="mes__batches",
            landing_uri=f"{duck.lake_root(settings)}/landing/mes__batches/a.parquet",
            rows_accepted=3,
        ),
        SimpleNamespace(
            feed="mes__batches",
            landing_uri=f"{duck.lake_root(settings)}/landing/mes__batches/b.parquet",
            rows_accepted=4,
        ),
        SimpleNamespace(feed="lims__qc_results", landing_uri=None, rows_accepted=0),  # quarantined: no output
    ]
    (landing,) = lineage.landing_datasets(settings, verdicts)
    source = _source_dataset(settings, SimpleNamespace(source_name="mes", name="batches"))
    assert (landing.namespace, landing.name, landing.rows) == (source.namespace, source.name, 7)
    if deployed:
        assert (landing.namespace, landing.name) == ("s3://lake", "landing/mes__batches")
