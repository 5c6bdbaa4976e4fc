"""Components taken from a site artifact directory enter the bundle only with a matching SHA256SUMS line, and are
recorded with origin `site-artifacts` in manifest.json and the SBOM (real bundle/build.py on a throwaway site dir)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bundle import build

DIST = b"fake dist tarball bytes\n"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "site" / "marquez-web"
    folder.mkdir(parents=True)
    (folder / "marquez-web-0.51.1-dist.tar.gz").write_bytes(DIST)
    digest = hashlib.sha256(DIST).hexdigest()
    (folder / "SHA256SUMS").write_text(f"{digest}  marquez-web-0.51.1-dist.tar.gz\n")
    return tmp_path / "site"


def run_build(tmp_path: Path, site: Path | None) -> int:
    args = ["--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--only", "marquez-web"]
    return build.main([*args, *(["--artifacts-dir", str(site)] if site else [])])


def test_site_component_is_copied_verified_and_recorded(tmp_path, site):
    assert run_build(tmp_path, site) == 0
    out = tmp_path / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    (entry,) = manifest["artifacts"][:1]
    assert entry["component"] == "marquez-web"
    assert entry["origin"] == "site-artifacts:marquez-web/marquez-web-0.51.1-dist.tar.gz"
    assert entry["sha256"] == hashlib.sha256(DIST).hexdigest()
    assert (out / entry["file"]).read_bytes() == DIST
    sbom = json.loads((out / "sbom.cdx.json").read_text())
    (component,) = [c for c in sbom["components"] if c["name"] == "marquez-web"]
    assert component["hashes"] == [{"alg": "SHA-256", "content": entry["sha256"]}]
    assert {"name": "cgt-lakehouse:origin", "value": entry["origin"]} in component["properties"]


def test_one_changed_byte_is_refused_with_one_line_and_nothing_written(tmp_path, site, capsys):
    tarball = site / "marquez-web" / "marquez-web-0.51.1-dist.tar.gz"
    tarball.write_bytes(DIST.replace(b"fake", b"fakE"))
    assert run_build(tmp_path, site) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("bundle: marquez-web: checksum mismatch for ") and "\n" not in err
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_unlisted_file_and_missing_directory_are_clear_failures(tmp_path, site, capsys, monkeypatch):
    monkeypatch.delenv("BUNDLE_ARTIFACTS_DIR", raising=False)
    (site / "marquez-web" / "SHA256SUMS").write_text("")
    assert run_build(tmp_path, site) == 1
    assert "is not listed in" in capsys.readouterr().err
    assert run_build(tmp_path, None) == 1
    assert "no site artifact directory given (set BUNDLE_ARTIFACTS_DIR)" in capsys.readouterr().err
