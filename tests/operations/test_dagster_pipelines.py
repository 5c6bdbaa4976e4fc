"""Pausing and resuming the pipelines around a change, against a real Dagster webserver on loopback serving this
code location (its sensors and the nightly schedule), with a throwaway instance."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "playbooks" / "upgrade" / "files" / "dagster_pipelines.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def webserver(tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp("dagster")
    (tmp / "home").mkdir()
    (tmp / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp / "home"), "LAKEHOUSE_HOME": str(tmp / "lakehouse")}
    exe = Path(sys.executable).with_name("dagster-webserver")
    proc = subprocess.Popen(
        [str(exe), "-h", "127.0.0.1", "-p", str(port), "-m", "pipelines.definitions"],
        env=env,
        stdout=(tmp / "webserver.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(url + "/server_info", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None, (tmp / "webserver.log").read_text()[-2000:]
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def status(url: str) -> dict:
    res = run("status", "--url", url)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["instigators"]


def test_pause_stops_what_ran_and_resume_starts_exactly_that(webserver, tmp_path):
    before = status(webserver)
    running = {k for k, v in before.items() if v == "RUNNING"}
    assert "sensor landing_sensor" in running or any(k.startswith("sensor ") for k in running), before
    assert any(k.startswith("schedule ") for k in running), before
    state = tmp_path / "paused.json"

    paused = run("pause", "--url", webserver, "--state", str(state), "--wait-seconds", "30")
    assert paused.returncode == 0, paused.stderr
    assert set(json.loads(paused.stdout)["paused"]) == running
    assert set(status(webserver).values()) == {"STOPPED"}
    # A second pause (a re-run of the upgrade) keeps what ran before the change.
    again = run("pause", "--url", webserver, "--state", str(state), "--wait-seconds", "30")
    assert again.returncode == 0 and set(json.loads(again.stdout)["paused"]) == running

    resumed = run("resume", "--url", webserver, "--state", str(state))
    assert resumed.returncode == 0, resumed.stderr
    assert set(json.loads(resumed.stdout)["resumed"]) == running
    assert status(webserver) == before
    assert not state.exists()


def test_resume_without_a_pause_and_an_unreachable_webserver_fail_in_one_line(webserver, tmp_path):
    res = run("resume", "--url", webserver, "--state", str(tmp_path / "none.json"))
    assert res.returncode == 1 and "no pause recorded" in res.stderr and res.stdout == ""
    res = run("status", "--url", f"http://127.0.0.1:{free_port()}")
    assert res.returncode == 1 and "not reachable" in res.stderr and len(res.stderr.splitlines()) == 1
