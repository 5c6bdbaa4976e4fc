"""The change record from a real `--check --diff` run: ansible-playbook over a local connection, the artifact role
installing from bundles served over real HTTP on loopback (release 1 installed for real, release 2 the target)."""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bundle.build import Entry, sha256_of, write_metadata
from pipelines.cli import main
from pipelines.operations import change_record
from tests.operations.local_ansible import run_tasks

REPO = Path(__file__).resolve().parents[2]


def make_bundle(root: Path, version: str) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(f"#!/bin/sh\necho tool {version}\n".encode())
    write_metadata(root, [Entry("tool", version, "test", "bin/tool")], {})
    return root


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Path]:
    """Both bundles under one loopback server: /r1 and /r2."""
    make_bundle(tmp_path / "www" / "r1", "1.0")
    make_bundle(tmp_path / "www" / "r2", "2.0")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def play(tmp_path: Path, url: str, setting: str, *args: str) -> subprocess.CompletedProcess:
    """Install the tool from the bundle at url and write a config file with `setting`; a command and a task that
    only runs for real, as the roles have them."""
    tasks = f"""\
    - name: Install the tool
      ansible.builtin.include_role:
        name: artifact
      vars:
        artifact_component: tool
        artifact_dest: {tmp_path}/opt/tool
        artifact_mode: '0755'
        artifact_download_dir: {tmp_path}/downloads
        lakehouse_artifact_url: {url}
    - name: Write the configuration
      ansible.builtin.copy:
        content: "setting = {setting}\\n"
        dest: {tmp_path}/etc/tool.conf
        mode: "0644"
    - name: Migrate the schema
      ansible.builtin.command: /bin/true
      changed_when: true
    - name: Build the venv
      ansible.builtin.file:
        path: {tmp_path}/venv
        state: directory
        mode: "0755"
      when: not ansible_check_mode
"""
    (tmp_path / "etc").mkdir(exist_ok=True)
    return run_tasks(tmp_path / "site.yml", tasks, *args)


def test_record_lists_components_config_diffs_and_what_check_mode_cannot_predict(served, tmp_path):
    installed = play(tmp_path, f"{served}/r1", "old")
    assert installed.returncode == 0, installed.stdout[-2000:]
    check = play(tmp_path, f"{served}/r2", "new", "--check", "--diff")
    assert check.returncode == 0, check.stdout[-2000:]
    (tmp_path / "check-run.json").write_text(check.stdout)
    r1 = json.loads((tmp_path / "www/r1/manifest.json").read_text())
    r2 = json.loads((tmp_path / "www/r2/manifest.json").read_text())

    rec = change_record.build(tmp_path / "check-run.json", r2, r1, {"localhost": ['{"role": "tool", "commit": "abc"}']})

    host = rec["hosts"]["localhost"]
    [tool] = host["components"]
    assert tool["component"] == "tool"
    assert (tool["from_version"], tool["to_version"]) == ("1.0", "2.0")
    assert tool["from_sha256"] == sha256_of(tmp_path / "opt/tool") == sha256_of(tmp_path / "www/r1/bin/tool")
    assert tool["to_sha256"] == sha256_of(tmp_path / "www/r2/bin/tool")
    assert tool["changes"] is True
    # The check run changed nothing: the installed file is still release 1's.
    assert (tmp_path / "opt/tool").read_text() == "#!/bin/sh\necho tool 1.0\n"
    config = {c["task"]: c["diff"] for c in host["configuration"]}
    assert "-setting = old" in config["Write the configuration"]
    assert "+setting = new" in config["Write the configuration"]
    unpredicted = {u["task"]: u["reason"] for u in host["unpredicted"]}
    assert "check mode" in unpredicted["Migrate the schema"].lower()
    assert "ansible_check_mode" in unpredicted["Build the venv"]
    assert host["installed_from"] == {
        "tool": {"version": None, "commit": "abc", "bundle_manifest_sha256": None, "inventory_commit": None,
                 "at_utc": None}
    }  # fmt: skip
    assert rec["problems"] == []
    md = change_record.render_markdown(rec)
    assert "| tool (`" in md and "| **yes** |" in md and "+setting = new" in md and "Migrate the schema" in md


def test_same_release_again_changes_no_component(served, tmp_path):
    assert play(tmp_path, f"{served}/r1", "same").returncode == 0
    check = play(tmp_path, f"{served}/r1", "same", "--check", "--diff")
    (tmp_path / "check-run.json").write_text(check.stdout)
    r1 = json.loads((tmp_path / "www/r1/manifest.json").read_text())
    rec = change_record.build(tmp_path / "check-run.json", r1, r1)
    host = rec["hosts"]["localhost"]
    assert [c["changes"] for c in host["components"]] == [False]
    assert host["configuration"] == []


def test_cli_writes_json_and_markdown_and_fails_on_a_failed_check_run(served, tmp_path, capsys):
    # Target bundle without the component: the check run fails on the host, and the record says so (exit 1).
    (tmp_path / "www/r3").mkdir()
    write_metadata(tmp_path / "www/r3", [], {})
    check = play(tmp_path, f"{served}/r3", "x", "--check", "--diff")
    assert check.returncode != 0
    (tmp_path / "check-run.json").write_text(check.stdout)
    with pytest.raises(SystemExit) as exc:
        main(["change-record", "--check-run", str(tmp_path / "check-run.json"),
              "--to-manifest", str(tmp_path / "www/r3/manifest.json"), "--out", str(tmp_path / "rec")])  # fmt: skip
    assert exc.value.code == 1
    rec = json.loads((tmp_path / "rec/change-record.json").read_text())
    assert rec["problems"] and "localhost" in rec["problems"][0]
    assert "component tool is not in the bundle manifest" in rec["hosts"]["localhost"]["failed_tasks"][0]["message"]
    assert (tmp_path / "rec/change-record.md").read_text().startswith("# Change record: upgrade")


def test_not_a_check_run_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("PLAY [x] ****\n")
    (tmp_path / "m.json").write_text("{}")
    with pytest.raises(SystemExit) as exc:
        main(["change-record", "--check-run", str(bad), "--to-manifest", str(tmp_path / "m.json"), "--out",
              str(tmp_path / "o")])  # fmt: skip
    assert exc.value.code != 0
    assert "not the output of ansible's JSON callback" in capsys.readouterr().err


def test_the_target_names_checkout_and_bundle_commit_apart_and_refuses_another_bundle_commit(served, tmp_path, capsys):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    installed = play(tmp_path, f"{served}/r1", "old")
    assert installed.returncode == 0
    check = play(tmp_path, f"{served}/r2", "new", "--check", "--diff")
    (tmp_path / "check-run.json").write_text(check.stdout)
    r2 = tmp_path / "www/r2/manifest.json"  # write_metadata names this repository's HEAD as its source commit
    args = ["change-record", "--check-run", str(tmp_path / "check-run.json"), "--to-manifest", str(r2),
            "--to-release", "0.2.0", "--checkout", str(REPO)]  # fmt: skip
    main([*args, "--out", str(tmp_path / "rec")])
    to = json.loads((tmp_path / "rec/change-record.json").read_text())["to"]
    assert to["checkout_commit"] == to["bundle_source_commit"] == head and to["bundle_commit_allowed"] is False
    line = next(x for x in (tmp_path / "rec/change-record.md").read_text().splitlines() if x.startswith("- To:"))
    assert line.startswith(f"- To: release 0.2.0, checkout `{head[:12]}` (`git describe`: ")
    assert f"bundle built from `{head[:12]}`, bundle manifest sha256 `" in line
    # The same bundle claiming another source commit: refused before any record is written, unless named.
    other = dict(json.loads(r2.read_text()), source_commit="0" * 40)
    (tmp_path / "other.json").write_text(json.dumps(other))
    args[4] = str(tmp_path / "other.json")
    with pytest.raises(SystemExit) as exc:
        main([*args, "--out", str(tmp_path / "refused")])
    assert exc.value.code == 2
    assert f"built from 000000000000, not from the checkout's HEAD {head[:12]}" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()
    main([*args, "--allow-bundle-commit", "0000000", "--out", str(tmp_path / "allowed")])
    md = (tmp_path / "allowed/change-record.md").read_text()
    assert "bundle built from `000000000000` (not the checkout's HEAD: allowed by the change's input)" in md
