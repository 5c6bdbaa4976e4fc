"""Fixtures for the tests of a built bundle (marker `bundle`; `make bundle-test` runs them after `make bundle`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.net import free_port

REPO = Path(__file__).resolve().parents[2]
BUNDLE = Path(os.environ.get("CGT_BUNDLE_DIR", REPO / "dist" / "bundle"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bundle: needs a built dist/bundle (make bundle-test builds it first)")


@pytest.fixture(scope="session")
def bundle_dir() -> Path:
    # Building takes minutes (Go, Maven, PyPI), so plain `pytest` does not start one behind the user's back;
    # `make bundle-test` builds (or incrementally rebuilds) the bundle and then runs these tests.
    if not (BUNDLE / "manifest.json").exists():
        pytest.skip(f"no built bundle at {BUNDLE}: run `make bundle-test` (it builds the bundle first)")
    return BUNDLE


@pytest.fixture(scope="session")
def manifest(bundle_dir: Path) -> dict:
    return json.loads((bundle_dir / "manifest.json").read_text())


def artifact(manifest: dict, component: str) -> dict:
    for entry in manifest["artifacts"]:
        if entry["component"] == component:
            return entry
    raise AssertionError(
        f"component {component} is not in {BUNDLE}/manifest.json (built from {manifest.get('source_commit')}):"
        " rebuild it with `make bundle`"
    )


def wait_http(url: str, proc: subprocess.Popen, timeout: float) -> int:
    """Poll url until it answers (any 2xx-3xx); fail early when the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@dataclass
class MarquezServer:
    url: str
    log: Path


@pytest.fixture(scope="session")
def marquez_server(bundle_dir: Path, manifest: dict, tmp_path_factory, postgres_server) -> Iterator[MarquezServer]:
    """The Marquez API from the bundle (java -cp 'lib/*' MAIN-CLASS, as the role starts it) on a free loopback port,
    on a throwaway database of the test PostgreSQL cluster, migrated on start."""
    java = shutil.which("java")
    if java is None:
        pytest.fail("java not found (Debian: openjdk-17-jre-headless)")
    root = tmp_path_factory.mktemp("marquez")
    with tarfile.open(bundle_dir / artifact(manifest, "marquez")["file"]) as tar:
        tar.extractall(root / "release", filter="data")
    main_class = (root / "release" / "MAIN-CLASS").read_text().strip()
    postgres_server.create_database("marquez_bundle_test")
    port, admin = free_port(), free_port()
    config = root / "marquez.yml"
    config.write_text(
        f"server:\n  applicationConnectors: [{{type: http, port: {port}, bindHost: 127.0.0.1}}]\n"
        f"  adminConnectors: [{{type: http, port: {admin}, bindHost: 127.0.0.1}}]\n"
        "db:\n  driverClass: org.postgresql.Driver\n"
        f"  url: jdbc:postgresql://127.0.0.1:{postgres_server.port}/marquez_bundle_test\n"
        f"  user: {postgres_server.superuser}\n  password: unused-trust-auth\n"
        "migrateOnStartup: true\nsearch:\n  enabled: false\n"
    )
    log_path = root / "marquez.log"
    cmd = [java, "-Duser.timezone=UTC", "-cp", str(root / "release" / "lib" / "*"), main_class, "server", str(config)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{url}/api/v1/namespaces", proc, 180)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log_path.read_text()[-3000:]}") from None
        yield MarquezServer(url, log_path)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.fixture(scope="session")
def superset_python(bundle_dir: Path, manifest: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv of the bundle's Superset wheelhouse, built offline like roles/artifact's venv entry point."""
    uv = shutil.which("uv")
    if not uv:
        pytest.fail("uv is not on PATH (run through make bundle-test)")
    root = tmp_path_factory.mktemp("superset-venv")
    with tarfile.open(bundle_dir / artifact(manifest, "superset-wheelhouse")["file"]) as tar:
        tar.extractall(root / "wheels", filter="data")
    venv = root / "venv"
    subprocess.run([uv, "venv", "--quiet", "--no-config", "--python", "python3.11", str(venv)], check=True)
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--no-config", "--offline", "--no-index", "--python",
         str(venv / "bin/python"), "--find-links", str(root / "wheels"), "-r", str(root / "wheels/requirements.txt")],
        check=True,
        env={**os.environ, "UV_CACHE_DIR": str(root / "uv-cache")},
    )  # fmt: skip
    return venv / "bin" / "python"
