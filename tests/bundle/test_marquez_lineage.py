"""A pipeline run's lineage in a REAL Marquez (the bundle's jar, a throwaway PostgreSQL database): events made while
the server is down wait on disk, `lakehouse status` counts them, `lakehouse lineage-send` delivers them, and the
upstream graph of a mart reaches the raw files it was built from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

from tests.fixtures.marquez import producers, upstream
from tests.fixtures.net import free_port

# A pipeline run plus 76 events into Marquez: minutes on a loaded 2-core machine (pytest's default limit is 600 s).
pytestmark = [pytest.mark.bundle, pytest.mark.slow, pytest.mark.timeout(1800)]


def lakehouse(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    cmd = [sys.executable, "-m", "pipelines.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=clean | env, timeout=900)


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.load(resp)


@pytest.fixture(scope="module")
def delivered(marquez_server, postgres_server, tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("lineage") / "home"
    marts = postgres_server.create_database("lineage_marts")
    env = {
        "LAKEHOUSE_HOME": str(home),
        "LAKEHOUSE_MARTS_BACKEND": "postgres",
        "LAKEHOUSE_MARTS_PG_DSN": marts,
        "LAKEHOUSE_LINEAGE_TRANSPORT": "http",
        "LAKEHOUSE_MARQUEZ_API_KEY": "lab-token",
        "LAKEHOUSE_LINEAGE_HTTP_RETRIES": "1",
    }
    down = env | {"LAKEHOUSE_MARQUEZ_URL": f"http://127.0.0.1:{free_port()}"}  # nothing listens there
    demo = lakehouse(down, "demo", "--scale", "2")
    assert demo.returncode == 0, demo.stderr[-3000:]
    status_down = json.loads(lakehouse(down, "status", "--json").stdout)["lineage"]
    up = env | {"LAKEHOUSE_MARQUEZ_URL": marquez_server.url}
    send = lakehouse(up, "lineage-send")
    status_up = json.loads(lakehouse(up, "status", "--json").stdout)["lineage"]
    summary = json.loads((home / "demo" / "summary.json").read_text())
    return {"summary": summary, "down": status_down, "send": send, "up": status_up, "marts": marts}


def test_events_wait_while_the_server_is_down_and_are_sent_later(delivered):
    events = delivered["summary"]["lineage_undelivered"]
    assert events > 20, delivered["summary"]
    assert delivered["down"] == {"waiting": events, "rejected": 0}
    assert delivered["send"].returncode == 0, delivered["send"].stderr
    assert f"lineage: sent {events}, 0 waiting" in delivered["send"].stdout
    assert delivered["up"] == {"waiting": 0, "rejected": 0}


def test_upstream_graph_of_a_mart_reaches_the_raw_files(delivered, marquez_server, postgres_server):
    namespace = f"postgres://{postgres_server.host}:{postgres_server.port}"
    datasets = get(f"{marquez_server.url}/api/v1/namespaces/{urllib.parse.quote(namespace, safe='')}/datasets")
    marts = [d["name"] for d in datasets["datasets"] if d["name"].endswith(".batch_overview")]
    assert marts, [d["name"] for d in datasets["datasets"]]
    node = f"dataset:{namespace}:{marts[0]}"
    graph = get(f"{marquez_server.url}/api/v1/lineage?nodeId={urllib.parse.quote(node, safe='')}&depth=60")
    seen = upstream(graph, node)
    # Marquez names a job that has a parent run facet <parent job>.<job>: lakehouse.run.lakehouse.ingest.
    jobs = {n.split(":", 2)[2].removeprefix("lakehouse.run.") for n in seen if n.startswith("job:")}
    assert {"lakehouse.ingest", "lakehouse.validate"} <= jobs, sorted(jobs)
    assert any(j.startswith("lakehouse.dbt.") for j in jobs), sorted(jobs)
    datasets_up = [n for n in seen if n.startswith("dataset:")]
    raw = [n for n in datasets_up if "/raw/" in n]
    landing = [n for n in datasets_up if "/lake/landing/" in n]
    assert raw and landing, sorted(datasets_up)
    # The raw files are those ingest landed: each raw dataset's producer is lakehouse.ingest, fed by a delivered file.
    for raw_node in raw:
        assert producers(graph, raw_node) == ["job:cgt-lakehouse:lakehouse.run.lakehouse.ingest"], raw_node
