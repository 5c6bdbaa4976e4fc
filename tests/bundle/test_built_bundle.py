"""A built bundle is complete, its sums verify, and its servers really start (real processes on loopback)."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import tarfile
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bundle.build import PINS, sha256_of
from tests.bundle.conftest import artifact, wait_http
from tests.fixtures.net import free_port

pytestmark = pytest.mark.bundle


def test_sha256sums_verify_with_coreutils(bundle_dir: Path):
    result = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=bundle_dir, capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_manifest_matches_every_file(bundle_dir: Path, manifest: dict):
    for entry in manifest["artifacts"]:
        path = bundle_dir / entry["file"]
        assert path.stat().st_size == entry["size"], entry["file"]
        assert sha256_of(path) == entry["sha256"], entry["file"]
        assert entry["version"] and entry["origin"], entry


def test_sbom_lists_every_wheel_with_its_hash(bundle_dir: Path, manifest: dict):
    sbom = json.loads((bundle_dir / "sbom.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    listed = {(c["properties"][0]["value"], c["hashes"][0]["content"]) for c in sbom["components"]}
    for house in ("dagster-wheelhouse", "superset-wheelhouse", "duckdb-extensions", "uv"):
        with tarfile.open(bundle_dir / artifact(manifest, house)["file"]) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".whl"):
                    digest = hashlib.sha256(tar.extractfile(member).read()).hexdigest()
                    assert (member.name, digest) in listed, member.name


def test_dagster_wheelhouse_holds_the_pipelines_wheel(bundle_dir: Path, manifest: dict):
    with tarfile.open(bundle_dir / artifact(manifest, "dagster-wheelhouse")["file"]) as tar:
        names = tar.getnames()
    assert any(n.startswith("cgt_lakehouse_pipelines-") for n in names), names
    assert "requirements.txt" in names


def test_superset_wheelhouse_holds_the_sign_in_libraries(bundle_dir: Path, manifest: dict):
    # AUTH_LDAP imports python-ldap (compiled on the controller, ADR 0100); AUTH_OAUTH needs Authlib.
    with tarfile.open(bundle_dir / artifact(manifest, "superset-wheelhouse")["file"]) as tar:
        names = tar.getnames()
    assert any(n.startswith("python_ldap-") and n.endswith("-cp311-cp311-linux_x86_64.whl") for n in names), names
    assert any(n.startswith("authlib-") for n in names), names


def test_uv_from_the_bundle_runs(bundle_dir: Path, manifest: dict, tmp_path: Path):
    # What roles/artifact (tasks_from: venv) does on a VM: take the binary out of the wheel and run it.
    with tarfile.open(bundle_dir / artifact(manifest, "uv")["file"]) as tar:
        tar.extractall(tmp_path, filter="data")
    (wheel,) = tmp_path.glob("uv-*.whl")
    subprocess.run(["python3", "-m", "zipfile", "-e", str(wheel), str(tmp_path / "x")], check=True)
    (binary,) = (tmp_path / "x").glob("uv-*.data/scripts/uv")
    binary.chmod(0o755)
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("uv 0.13.9"), out


def test_minio_server_answers_health_on_loopback(bundle_dir: Path, manifest: dict, tmp_path: Path):
    binary = bundle_dir / artifact(manifest, "minio")["file"]
    port, console = free_port(), free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MINIO_ROOT_USER": "t" + secrets.token_hex(8),
        "MINIO_ROOT_PASSWORD": secrets.token_urlsafe(24),
    }
    cmd = [str(binary), "server", "--quiet", "--address", f"127.0.0.1:{port}"]
    cmd += ["--console-address", f"127.0.0.1:{console}", str(tmp_path / "data")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert wait_http(f"http://127.0.0.1:{port}/minio/health/live", proc, 60) == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_mc_client_runs(bundle_dir: Path, manifest: dict, tmp_path: Path):
    binary = bundle_dir / artifact(manifest, "mc")["file"]
    result = subprocess.run([str(binary), "--config-dir", str(tmp_path), "--version"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "mc version" in result.stdout


def test_marquez_api_and_web_come_verified_with_their_origin(bundle_dir: Path, manifest: dict):
    """Where Maven Central does not serve marquez-api, both Marquez parts come from the site artifact directory:
    the jar in the bundle is byte-identical to the one its provenance SHA256SUMS names, and the SBOM says so."""
    sbom = {c["name"]: c for c in json.loads((bundle_dir / "sbom.cdx.json").read_text())["components"]}
    api, web = artifact(manifest, "marquez"), artifact(manifest, "marquez-web")
    assert api["version"] == web["version"] == "0.51.1"
    with tarfile.open(bundle_dir / api["file"]) as tar:
        jars = [m for m in tar.getmembers() if m.name.startswith("lib/") and m.name.endswith(".jar")]
        assert jars, tar.getnames()
        if api["origin"].startswith("site-artifacts:"):
            (jar,) = jars
            digest = hashlib.sha256(tar.extractfile(jar).read()).hexdigest()
            assert sbom["marquez"]["hashes"][0]["content"] == digest
            assert {"name": "cgt-lakehouse:origin", "value": api["origin"]} in sbom["marquez"]["properties"]
        else:
            assert api["origin"] == "maven-central:io.github.marquezproject:marquez-api:0.51.1"
    assert web["origin"] == "site-artifacts:marquez-web/marquez-web-0.51.1-dist.tar.gz"
    assert sbom["marquez-web"]["hashes"][0]["content"] == web["sha256"]
    with tarfile.open(bundle_dir / web["file"]) as tar:
        assert "dist/index.html" in tar.getnames()


def test_marquez_answers_namespaces_against_postgresql(marquez_server):
    """The Marquez jar of the bundle starts on Debian's Java 17, migrates an empty database and serves its API."""
    with urllib.request.urlopen(f"{marquez_server.url}/api/v1/namespaces", timeout=10) as resp:
        assert resp.status == 200
        assert "namespaces" in json.load(resp)


def test_oauth2_proxy_reports_the_pinned_version(bundle_dir: Path, manifest: dict):
    entry = artifact(manifest, "oauth2-proxy")
    result = subprocess.run([str(bundle_dir / entry["file"]), "--version"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"oauth2-proxy {entry['version']}" in result.stdout + result.stderr


def test_dex_reports_the_pinned_release(bundle_dir: Path, manifest: dict):
    entry = artifact(manifest, "dex")
    pin = next(p for p in tomllib.loads(PINS.read_text())["go"] if p["name"] == "dex")
    result = subprocess.run([str(bundle_dir / entry["file"]), "version"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"Dex Version: {pin['x']['main.version']}" in result.stdout
