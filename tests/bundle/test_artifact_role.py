"""The `artifact` role installs a bundle file only when its sha256 matches the manifest (real ansible-playbook
against this machine over a local connection, the bundle served over real HTTP on loopback)."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bundle.build import Entry, sha256_of, write_metadata

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def served_bundle(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "bundle"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\necho tool 1.0\n")
    write_metadata(root, [Entry("tool", "1.0", "test", "bin/tool")], {})
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()


def install(
    url: str, dest: Path, tmp_path: Path, component: str = "tool", extra_vars: str = ""
) -> subprocess.CompletedProcess:
    playbook = tmp_path / "install.yml"
    playbook.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  roles:\n"
        f"    - role: artifact\n      artifact_component: {component}\n      artifact_dest: {dest}\n"
        f"      artifact_mode: '0755'\n      artifact_download_dir: {tmp_path / 'downloads'}\n"
        f"      lakehouse_artifact_url: {url}\n{extra_vars}"
        "  post_tasks:\n    - ansible.builtin.debug:\n        msg: 'artifact_replaced={{ artifact_replaced }}'\n"
    )
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_NOCOLOR": "1",
    }
    ansible = Path(sys.executable).parent / "ansible-playbook"
    # The venv's own Python runs the modules: interpreter discovery would pick whatever python3 is first on PATH.
    cmd = [str(ansible), "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}", str(playbook)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_installs_verified_file_then_changes_nothing(served_bundle, tmp_path):
    url, root = served_bundle
    dest = tmp_path / "opt" / "tool"
    first = install(url, dest, tmp_path)
    assert first.returncode == 0, first.stdout
    assert sha256_of(dest) == sha256_of(root / "bin" / "tool")
    assert oct(dest.stat().st_mode & 0o777) == "0o755"
    second = install(url, dest, tmp_path)
    assert second.returncode == 0, second.stdout
    assert "changed=0" in second.stdout
    # The output callers restart their service on: a replaced file says so, an unchanged one does not.
    assert "artifact_replaced=True" in first.stdout
    assert "artifact_replaced=False" in second.stdout


def test_one_changed_byte_fails_with_checksum_message_and_installs_nothing(served_bundle, tmp_path):
    url, root = served_bundle
    served = root / "bin" / "tool"
    data = bytearray(served.read_bytes())
    data[-2] ^= 0x01  # one byte differs from what the manifest recorded
    served.write_bytes(bytes(data))
    dest = tmp_path / "opt" / "tool"
    result = install(url, dest, tmp_path)
    assert result.returncode != 0
    assert "checksum mismatch for tool" in result.stdout
    assert not dest.exists()


def test_manifest_pinned_by_the_change_record_is_verified_first(served_bundle, tmp_path):
    """The documented site input lakehouse_artifact_manifest_sha256 is honoured (it was once silently ignored)."""
    url, root = served_bundle
    dest = tmp_path / "opt" / "tool"
    wrong = install(url, dest, tmp_path, extra_vars="      lakehouse_artifact_manifest_sha256: '" + "0" * 64 + "'\n")
    assert wrong.returncode != 0
    assert "checksum mismatch for manifest.json" in wrong.stdout, wrong.stdout
    assert not dest.exists()
    pinned = sha256_of(root / "manifest.json")
    right = install(url, dest, tmp_path, extra_vars=f"      lakehouse_artifact_manifest_sha256: {pinned}\n")
    assert right.returncode == 0, right.stdout
    assert sha256_of(dest) == sha256_of(root / "bin" / "tool")


def test_unknown_component_is_a_clear_failure(served_bundle, tmp_path):
    url, root = served_bundle
    (root / "manifest.json").write_text('{"artifacts": []}')
    result = install(url, tmp_path / "tool", tmp_path)
    assert result.returncode != 0
    assert "component tool is not in the bundle manifest" in result.stdout


@pytest.mark.bundle
def test_one_changed_byte_in_the_built_server_binary_is_refused(bundle_dir, manifest, tmp_path):
    """The real consuming step (the artifact role, as the minio role calls it) on a copy of the built bundle."""
    from tests.bundle.conftest import artifact

    entry = artifact(manifest, "minio")
    copy = tmp_path / "served"
    (copy / "bin").mkdir(parents=True)
    shutil.copy2(bundle_dir / "manifest.json", copy / "manifest.json")
    data = bytearray((bundle_dir / entry["file"]).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / entry["file"]).write_bytes(bytes(data))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(copy))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dest = tmp_path / "opt" / "minio"
        result = install(f"http://127.0.0.1:{server.server_address[1]}", dest, tmp_path, component="minio")
    finally:
        server.shutdown()
    assert result.returncode != 0
    assert f"checksum mismatch for minio: expected {entry['sha256']}" in result.stdout
    assert not dest.exists()
