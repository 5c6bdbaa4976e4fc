#!/usr/bin/env python3
"""Pause and resume the pipelines around a change (playbooks/upgrade.yml, rollback.yml; ADR 0187).

    dagster_pipelines.py pause  --url http://127.0.0.1:3000 --state FILE [--wait-seconds 900]
    dagster_pipelines.py resume --url http://127.0.0.1:3000 --state FILE
    dagster_pipelines.py status --url http://127.0.0.1:3000

pause: every sensor and schedule that is running is stopped through the webserver's GraphQL API (the state is
stored in the instance, so it holds across restarts of the daemon during the change), their names are written to
FILE, then it waits until no run is queued or in progress (exit 1 after --wait-seconds). A second pause keeps the
first FILE (what to resume is what ran before the change). resume: starts exactly the ones in FILE, then removes it.
Standard library only: it runs on the orchestrator with the OS's python3, whatever release is installed.
Prints one JSON line; exit 0 ok, 1 failure (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request

REPOS = """
query { repositoriesOrError { __typename ... on RepositoryConnection { nodes { name location { name }
  sensors { id name sensorState { status } } schedules { id name scheduleState { status } } } }
  ... on PythonError { message } } }"""
ACTIVE_RUNS = """
query { runsOrError(filter: {statuses: [QUEUED, NOT_STARTED, STARTING, STARTED, CANCELING]}) {
  __typename ... on Runs { results { runId status } } ... on PythonError { message } } }"""
STOP_SENSOR = """
mutation($id: String) { stopSensor(id: $id) { __typename
  ... on StopSensorMutationResult { instigationState { status } } ... on PythonError { message } } }"""
STOP_SCHEDULE = """
mutation($id: String) { stopRunningSchedule(id: $id) { __typename
  ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message } } }"""
START_SENSOR = """
mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename
  ... on Sensor { sensorState { status } } ... on PythonError { message } } }"""
START_SCHEDULE = """
mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) { __typename
  ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message } } }"""
IN_PROGRESS = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}


class Failure(Exception):
    pass


def gql(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(
        url.rstrip("/") + "/graphql", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            doc = json.load(resp)
    except OSError as exc:
        raise Failure(f"Dagster webserver at {url} not reachable: {exc}") from None
    if doc.get("errors"):
        raise Failure(f"GraphQL error: {doc['errors'][0].get('message')}")
    return doc["data"]


def instigators(url: str) -> list[dict]:
    """Every sensor and schedule: kind, name, id, status, location, repository."""
    res = gql(url, REPOS)["repositoriesOrError"]
    if res["__typename"] != "RepositoryConnection":
        raise Failure(f"repositories: {res.get('message', res['__typename'])}")
    out = []
    for repo in res["nodes"]:
        base = {"location": repo["location"]["name"], "repository": repo["name"]}
        out += [{"kind": "sensor", "name": s["name"], "id": s["id"], "status": s["sensorState"]["status"], **base}
                for s in repo["sensors"]]  # fmt: skip
        out += [{"kind": "schedule", "name": s["name"], "id": s["id"], "status": s["scheduleState"]["status"], **base}
                for s in repo["schedules"]]  # fmt: skip
    return out


def active_runs(url: str) -> list[dict]:
    res = gql(url, ACTIVE_RUNS)["runsOrError"]
    if res["__typename"] != "Runs":
        raise Failure(f"runs: {res.get('message', res['__typename'])}")
    return [r for r in res["results"] if r["status"] in IN_PROGRESS]


def _check(res: dict, what: str) -> None:
    if res["__typename"] == "PythonError" or "Error" in res["__typename"]:
        raise Failure(f"{what}: {res.get('message', res['__typename'])}")


def pause(url: str, state_file: str, wait_seconds: float) -> dict:
    found = instigators(url)
    if os.path.exists(state_file):
        with open(state_file) as f:
            paused = json.load(f)["paused"]  # an earlier pause of this change: resume what ran before it
    else:
        paused = [i for i in found if i["status"] == "RUNNING"]
        tmp = state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"paused": paused, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f)
        os.replace(tmp, state_file)
    stopped = []
    for i in found:
        if i["status"] != "RUNNING":
            continue
        if i["kind"] == "sensor":
            _check(gql(url, STOP_SENSOR, {"id": i["id"]})["stopSensor"], f"stop sensor {i['name']}")
        else:
            _check(gql(url, STOP_SCHEDULE, {"id": i["id"]})["stopRunningSchedule"], f"stop schedule {i['name']}")
        stopped.append(f"{i['kind']} {i['name']}")
    still = [f"{i['kind']} {i['name']}" for i in instigators(url) if i["status"] == "RUNNING"]
    if still:
        raise Failure(f"still running after stop: {still}")
    deadline = time.monotonic() + wait_seconds
    runs = active_runs(url)
    while runs and time.monotonic() < deadline:
        time.sleep(5)
        runs = active_runs(url)
    if runs:
        raise Failure(f"{len(runs)} run(s) still in progress after {wait_seconds:.0f} s: {[r['runId'] for r in runs]}")
    return {"paused": [f"{i['kind']} {i['name']}" for i in paused], "stopped_now": stopped, "runs_in_progress": 0}


def resume(url: str, state_file: str) -> dict:
    if not os.path.exists(state_file):
        raise Failure(f"{state_file}: no pause recorded (nothing to resume)")
    with open(state_file) as f:
        paused = json.load(f)["paused"]
    current = {(i["kind"], i["name"]): i for i in instigators(url)}
    started, gone = [], []
    for i in paused:
        now = current.get((i["kind"], i["name"]))
        if now is None:
            gone.append(f"{i['kind']} {i['name']}")  # the new release no longer defines it
            continue
        if now["status"] == "RUNNING":
            continue
        selector = {"repositoryLocationName": now["location"], "repositoryName": now["repository"]}
        if i["kind"] == "sensor":
            res = gql(url, START_SENSOR, {"s": {**selector, "sensorName": i["name"]}})["startSensor"]
        else:
            res = gql(url, START_SCHEDULE, {"s": {**selector, "scheduleName": i["name"]}})["startSchedule"]
        _check(res, f"start {i['kind']} {i['name']}")
        started.append(f"{i['kind']} {i['name']}")
    not_running = [
        f"{i['kind']} {i['name']}"
        for i in instigators(url)
        if i["status"] != "RUNNING" and any((p["kind"], p["name"]) == (i["kind"], i["name"]) for p in paused)
    ]
    if not_running:
        raise Failure(f"not running after resume: {not_running}")
    os.remove(state_file)
    return {"resumed": started, "no_longer_defined": gone}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["pause", "resume", "status"])
    ap.add_argument("--url", default="http://127.0.0.1:3000", help="the webserver (loopback, no sign-in)")
    ap.add_argument("--state", help="file recording what was paused (pause, resume)")
    ap.add_argument("--wait-seconds", type=float, default=900, help="pause: wait this long for runs to end")
    args = ap.parse_args(argv)
    try:
        if args.action != "status" and not args.state:
            raise Failure(f"{args.action} needs --state FILE")
        if args.action == "pause":
            out = pause(args.url, args.state, args.wait_seconds)
        elif args.action == "resume":
            out = resume(args.url, args.state)
        else:
            found = instigators(args.url)
            out = {"instigators": {f"{i['kind']} {i['name']}": i["status"] for i in found},
                   "runs_in_progress": len(active_runs(args.url))}  # fmt: skip
    except Failure as exc:
        print(f"dagster_pipelines: {args.action}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
