"""Real OpenLineage requests to Marquez through the proxy, run from the controller (the checkout's venv).

Usage: python lineage_checks.py BASE_URL ISSUER STEP [--job NAME] [--home DIR]
  BASE_URL  the lineage UI behind the proxy (its /api/ reaches Marquez); ISSUER the provider of the bearer tokens
  STEP      events    POST a valid RunEvent with the service account's bearer token (2xx), an invalid one (4xx),
                      the same without a token and with a tampered one (refused, nothing stored); the lineage graph
                      shows the job and its datasets
            pipeline  a real pipeline run (`lakehouse demo`, http transport to BASE_URL with the bearer token) whose
                      upstream graph from the batch_overview mart reaches the raw files it was built from; prints
                      `MART {"namespace": ..., "name": ...}` for the browser check
            survived  after a restart of Marquez: the job of `events` still has its COMPLETED run, and the mart's
                      graph still reaches raw files
Environment: LINEAGE_CHECK_SVC_PASSWORD (the service account svc-lineage), LINEAGE_CHECK_CLIENT_SECRET (the
machine client cgt-lakehouse-pipelines), REQUESTS_CA_BUNDLE (the lab CA: the proxy's chain is verified).
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
sys.path.insert(0, str(Path(__file__).resolve().parent))  # lab_oidc beside this file
from lab_oidc import service_token  # noqa: E402

from tests.fixtures.marquez import producers, upstream  # noqa: E402

NAMESPACE = "cgt-lakehouse-molecule"
PRODUCER = "https://github.com/cgt-lakehouse/cgt-lakehouse/tree/main/roles/marquez/molecule"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
RESULTS: list[bool] = []


def check(name: str, ok: bool, detail: object = "") -> None:
    RESULTS.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else f': {detail}'}", flush=True)


def bearer_token(issuer: str) -> str:
    client = ("cgt-lakehouse-pipelines", os.environ["LINEAGE_CHECK_CLIENT_SECRET"])
    ca = os.environ["REQUESTS_CA_BUNDLE"]
    return service_token(issuer, "svc-lineage", os.environ["LINEAGE_CHECK_SVC_PASSWORD"], client, ca)


def session(token: str | None) -> requests.Session:
    s = requests.Session()
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
        "outputs": [{"namespace": "postgres://cgt-proxy-1:5432", "name": f"marts.marts.{job}"}],
        "producer": PRODUCER,
        "schemaURL": SCHEMA,
    }


def job_url(base: str, job: str) -> str:
    return f"{base}/api/v1/namespaces/{q(NAMESPACE)}/jobs/{q(job)}"


def step_events(base: str, job: str, token: str) -> None:
    # Refused first: without a token (the proxy sends machines to sign in) and with a tampered one (403).
    for label, intruder in (("without credentials", None), ("with a tampered token", token[:-8] + "AAAAAAAA")):
        r = session(intruder).post(
            f"{base}/api/v1/lineage", json=event(f"{job}.intruder", "START", str(uuid.uuid4())),
            allow_redirects=False, timeout=30,
        )  # fmt: skip
        check(f"RunEvent {label} refused by the proxy (HTTP {r.status_code})", r.status_code in (302, 401, 403), r.text)
    r = session(token).get(job_url(base, f"{job}.intruder"), timeout=30)
    check(f"nothing of the refused events reached Marquez (HTTP {r.status_code})", r.status_code == 404, r.text[:300])
    s = session(token)
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
        f"dataset:postgres://cgt-proxy-1:5432:marts.marts.{job}",
    }
    check("lineage graph shows the job, its input and its output", want <= ids, sorted(ids))
    r = s.get(job_url(base, job), timeout=30)
    check("job's latest run COMPLETED", r.ok and r.json()["latestRun"]["state"] == "COMPLETED", r.text[:300])


def mart_graph(s: requests.Session, base: str, home: Path) -> tuple[str | None, dict]:
    """The node id of this run's batch_overview mart and its lineage graph (None, {} if Marquez has no such mart)."""
    marts = []
    for ns in s.get(f"{base}/api/v1/namespaces", timeout=30).json()["namespaces"]:
        # Namespaces are URLs (`duckdb:///...`): URL-encoded, they must reach Marquez as sent (%2F stays %2F).
        r = s.get(f"{base}/api/v1/namespaces/{q(ns['name'])}/datasets?limit=1000", timeout=30)
        check(f"datasets of namespace {ns['name']} listed (HTTP {r.status_code})", r.ok, r.text[:300])
        datasets = r.json()["datasets"] if r.ok else []
        marts += [f"dataset:{ns['name']}:{d['name']}" for d in datasets if d["name"].endswith(".batch_overview")]
    marts = [m for m in marts if str(home) in m]
    check("the batch_overview mart of this run is in Marquez", len(marts) == 1, marts)
    if len(marts) != 1:
        return None, {}
    return marts[0], s.get(f"{base}/api/v1/lineage", params={"nodeId": marts[0], "depth": 60}, timeout=60).json()


def check_reaches_raw(graph: dict, mart: str) -> tuple[set[str], list[str]]:
    seen = upstream(graph, mart)
    raw = [n for n in seen if n.startswith("dataset:") and "/raw/" in n]
    check("upstream of the mart reaches raw files", bool(raw), sorted(seen))
    return seen, raw


def step_pipeline(base: str, home: Path, token: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env |= {
        "LAKEHOUSE_HOME": str(home),
        "LAKEHOUSE_LINEAGE_TRANSPORT": "http",
        "LAKEHOUSE_MARQUEZ_URL": base,
        "LAKEHOUSE_LINEAGE_HTTP_RETRIES": "2",
        "LAKEHOUSE_MARQUEZ_API_KEY": token,
    }
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
    mart, graph = mart_graph(session(token), base, home)
    if mart is None:
        return
    seen, raw = check_reaches_raw(graph, mart)
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
    print(f"mart {mart}: {len(seen)} upstream nodes, {len(raw)} raw files", flush=True)
    namespace, name = mart.removeprefix("dataset:").rsplit(":", 1)
    print("MART " + json.dumps({"namespace": namespace, "name": name, "upstream": len(seen)}), flush=True)


def step_survived(base: str, job: str, home: Path, token: str) -> None:
    s = session(token)
    r = s.get(job_url(base, job), timeout=30)
    check(
        "after the restart the job's latest run is still COMPLETED",
        r.ok and r.json()["latestRun"]["state"] == "COMPLETED",
        r.text[:300],
    )
    mart, graph = mart_graph(s, base, home)
    if mart is not None:
        seen, raw = check_reaches_raw(graph, mart)
        print(f"after the restart: {len(seen)} upstream nodes, {len(raw)} raw files", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("issuer")
    parser.add_argument("step", choices=["events", "pipeline", "survived"])
    parser.add_argument("--job", default="molecule.check")
    parser.add_argument("--home", type=Path)
    args = parser.parse_args()
    base = args.base_url.rstrip("/")
    token = bearer_token(args.issuer)
    if args.step == "events":
        step_events(base, args.job, token)
    elif args.step == "pipeline":
        step_pipeline(base, args.home, token)
    else:
        step_survived(base, args.job, args.home, token)
    return 0 if RESULTS and all(RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
