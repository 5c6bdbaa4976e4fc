"""Real OpenLineage requests against a converged Marquez, run from the controller (the checkout's venv).

Usage: python lineage_checks.py BASE_URL STEP [--job NAME] [--home DIR]   |   python lineage_checks.py free-port
  BASE_URL  where the Marquez API answers (/api/v1/...): through the proxy, or an SSH tunnel to its loopback port
  STEP      events    POST a valid RunEvent (2xx), an invalid one (4xx); the lineage graph shows job and datasets
            pipeline  a real pipeline run (`lakehouse demo`, http transport to BASE_URL, bearer token) whose upstream
                      graph from the batch_overview mart reaches the raw files it was built from
Environment: MARQUEZ_CHECK_TOKEN (bearer token, optional), REQUESTS_CA_BUNDLE (CA of the proxy, optional).
Prints one line per check and exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import urllib.parse
import uuid
from datetime import UTC, datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(REPO))
from tests.fixtures.marquez import producers, upstream  # noqa: E402

NAMESPACE = "cgt-lakehouse-molecule"
PRODUCER = "https://github.com/cgt-lakehouse/cgt-lakehouse/tree/main/roles/marquez/molecule"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
RESULTS: list[bool] = []


def check(name: str, ok: bool, detail: object = "") -> None:
    RESULTS.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else f': {detail}'}", flush=True)


def session() -> requests.Session:
    s = requests.Session()
    token = os.environ.get("MARQUEZ_CHECK_TOKEN")
    if token:
        s.headers["Authorization"] = f"Bearer {token}"
    return s


def q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def event(job: str, event_type: str, run_id: str) -> dict:
    return {
        "eventType": event_type,
        "eventTime": datetime.now(UTC).isoformat(),
        "run": {"runId": run_id},
        "job": {"namespace": NAMESPACE, "name": job},
        "inputs": [{"namespace": "s3://raw", "name": f"molecule/{job}/input.csv"}],
        "outputs": [{"namespace": "postgres://cgt-marquez-1:5432", "name": f"marts.marts.{job}"}],
        "producer": PRODUCER,
        "schemaURL": SCHEMA,
    }


def step_events(base: str, job: str) -> None:
    s = session()
    run_id = str(uuid.uuid4())
    for event_type in ("START", "COMPLETE"):
        r = s.post(f"{base}/api/v1/lineage", json=event(job, event_type, run_id), allow_redirects=False, timeout=30)
        check(f"valid {event_type} RunEvent accepted (HTTP {r.status_code})", 200 <= r.status_code < 300, r.text[:300])
    invalid = {"eventType": "START", "eventTime": datetime.now(UTC).isoformat(), "producer": PRODUCER}
    r = s.post(f"{base}/api/v1/lineage", json=invalid, allow_redirects=False, timeout=30)
    check(f"RunEvent without run and job refused (HTTP {r.status_code})", 400 <= r.status_code < 500, r.text[:300])
    node = f"job:{NAMESPACE}:{job}"
    r = s.get(f"{base}/api/v1/lineage", params={"nodeId": node, "depth": 5}, timeout=30)
    ids = {n["id"] for n in r.json()["graph"]} if r.ok else set()
    want = {
        node,
        f"dataset:s3://raw:molecule/{job}/input.csv",
        f"dataset:postgres://cgt-marquez-1:5432:marts.marts.{job}",
    }
    check("lineage graph shows the job, its input and its output", want <= ids, sorted(ids))
    r = s.get(f"{base}/api/v1/namespaces/{q(NAMESPACE)}/jobs/{q(job)}", timeout=30)
    check("job's latest run COMPLETED", r.ok and r.json()["latestRun"]["state"] == "COMPLETED", r.text[:300])


def step_pipeline(base: str, home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env |= {
        "LAKEHOUSE_HOME": str(home),
        "LAKEHOUSE_LINEAGE_TRANSPORT": "http",
        "LAKEHOUSE_MARQUEZ_URL": base,
        "LAKEHOUSE_LINEAGE_HTTP_RETRIES": "2",
    }
    if os.environ.get("MARQUEZ_CHECK_TOKEN"):
        env["LAKEHOUSE_MARQUEZ_API_KEY"] = os.environ["MARQUEZ_CHECK_TOKEN"]
    demo = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "demo", "--scale", "2"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    check("pipeline run succeeded", demo.returncode == 0, demo.stderr[-2000:])
    summary = json.loads((home / "demo" / "summary.json").read_text()) if demo.returncode == 0 else {}
    check(
        f"all {summary.get('lineage_events')} lineage events delivered, none waiting",
        summary.get("lineage_events", 0) > 20 and summary.get("lineage_undelivered") == 0,
        {k: summary.get(k) for k in ("lineage_events", "lineage_undelivered")},
    )
    s = session()
    marts = [
        f"dataset:{ns['name']}:{d['name']}"
        for ns in s.get(f"{base}/api/v1/namespaces", timeout=30).json()["namespaces"]
        for d in s.get(f"{base}/api/v1/namespaces/{q(ns['name'])}/datasets?limit=1000", timeout=30).json()["datasets"]
        if d["name"].endswith(".batch_overview") and str(home) in ns["name"]
    ]
    check("the batch_overview mart of this run is in Marquez", len(marts) == 1, marts)
    if not marts:
        return
    graph = s.get(f"{base}/api/v1/lineage", params={"nodeId": marts[0], "depth": 60}, timeout=60).json()
    seen = upstream(graph, marts[0])
    raw = [n for n in seen if n.startswith("dataset:") and "/raw/" in n]
    check("upstream of the mart reaches raw files", bool(raw), sorted(seen))
    check(
        "each raw file was written by lakehouse.ingest",
        all(producers(graph, n) == ["job:cgt-lakehouse:lakehouse.run.lakehouse.ingest"] for n in raw),
        {n: producers(graph, n) for n in raw},
    )
    jobs = {n.split(":", 2)[2] for n in seen if n.startswith("job:")}
    check(
        "the chain runs ingest -> validate -> dbt models -> publish",
        {"lakehouse.run.lakehouse.ingest", "lakehouse.run.lakehouse.validate"} <= jobs
        and any(".lakehouse.dbt." in j for j in jobs),
        sorted(jobs),
    )
    print(f"mart {marts[0]}: {len(seen)} upstream nodes, {len(raw)} raw files", flush=True)


def main() -> int:
    if sys.argv[1:] == ["free-port"]:  # for the scenario's SSH tunnel
        from tests.fixtures.net import free_port

        print(free_port())
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("step", choices=["events", "pipeline"])
    parser.add_argument("--job", default="molecule.check")
    parser.add_argument("--home", type=Path)
    args = parser.parse_args()
    base = args.base_url.rstrip("/")
    if args.step == "events":
        step_events(base, args.job)
    else:
        step_pipeline(base, args.home)
    return 0 if RESULTS and all(RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
