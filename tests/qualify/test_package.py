"""The evidence package: built from real ansible-playbook output (JSON callback) and a browser checks file,
written as JSON + HTML + PDF (real headless Chromium) with a manifest; verify catches every change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.qualify import catalog, evidence, package

ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")

PLAY = """\
- name: A qualification play in miniature
  hosts: all
  gather_facts: false
  tasks:
    - name: Measure something
      ansible.builtin.command: echo 4.2
      register: measured
      changed_when: false
    - name: Record IQ-TIME-01
      ansible.builtin.debug:
        msg:
          qualify_check: IQ-TIME-01
          actual: "offset {{ measured.stdout }} ms"
          passed: true
          time_utc: "2026-12-02T08:00:00Z"
          evidence: {chronyc.txt: "{{ measured.stdout }}"}
    - name: Record IQ-TLS-01
      ansible.builtin.debug:
        msg: {qualify_check: IQ-TLS-01, actual: expires in 3 days, passed: false}
"""

CONFIG_PLAY = """\
- name: A role's managed file
  hosts: all
  gather_facts: false
  tasks:
    - name: Render the config file
      ansible.builtin.copy:
        dest: "{{ target }}"
        content: "listen = 443\\nlog = on\\n"
        mode: "0644"
"""


def run_playbook(tmp_path: Path, name: str, text: str, *extra: str) -> Path:
    play = tmp_path / f"{name}.yml"
    play.write_text(text)
    out = tmp_path / f"{name}.json"
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_NOCOLOR": "1"}
    with out.open("w") as f:
        subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-c", "local", str(play), *extra,
                        "-e", f"ansible_python_interpreter={sys.executable}"],
                       stdout=f, env=env, check=False, timeout=300)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("qualify")
    iq = run_playbook(tmp, "iq", PLAY)
    target = tmp / "app.conf"
    target.write_text("listen = 443\nlog = on\n")
    run_playbook(tmp, "converge", CONFIG_PLAY, "-e", f"target={target}")  # converged: nothing to change
    clean = run_playbook(tmp, "clean", CONFIG_PLAY, "--check", "--diff", "-e", f"target={target}")
    target.write_text("listen = 443\nlog = off\n")  # edited by hand
    drift = run_playbook(tmp, "drift", CONFIG_PLAY, "--check", "--diff", "-e", f"target={target}")
    browser = tmp / "browser"
    browser.mkdir()
    (browser / "checks.json").write_text(json.dumps([
        {"name": "superset: https://10.77.0.14/ without a session -> 302 https://10.77.0.14/oauth2/start",
         "ok": True, "detail": "", "at": "2026-12-02T08:01:00Z"},
        {"name": "dashboard Batch overview: 5 charts drawn (superset-batch-overview.png)", "ok": True,
         "detail": "", "at": "2026-12-02T08:02:00Z"},
    ]))  # fmt: skip
    (browser / "superset-batch-overview.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    results, problems = [], []
    for loader, src in ((evidence.from_ansible, iq), (evidence.from_check_diff, clean),
                        (evidence.from_check_diff, drift), (evidence.from_browser, browser)):  # fmt: skip
        r, p = loader(src)
        results += r
        problems += p
    out = tmp / "package"
    data = package.build(catalog.load(), results, problems, ("iq",), out, system="unit test", executor="tester")
    return out, data, results


def test_results_come_from_the_playbook_and_the_check_run(built):
    _, _, results = built
    by = {(r["check"], r["actual"][:20]): r for r in results}
    assert by[("IQ-TIME-01", "offset 4.2 ms")]["passed"]
    assert not by[("IQ-TLS-01", "expires in 3 days")]["passed"]
    cfg = [r for r in results if r["check"] == "IQ-CFG-01"]
    assert [r["passed"] for r in cfg] == [True, False]
    assert "Render the config file" in cfg[1]["actual"]
    assert "-log = off" in cfg[1]["evidence"]["check-diff.txt"]
    assert "+log = on" in cfg[1]["evidence"]["check-diff.txt"]


def test_a_failing_check_fails_the_run_and_every_failure_is_a_deviation(built):
    out, data, _ = built
    assert data["result"] == "FAIL"
    kinds = {(d["kind"], d["check"]) for d in data["deviations"]}
    assert ("failed check", "IQ-TLS-01") in kinds
    assert ("failed check", "IQ-CFG-01") in kinds
    assert ("check not executed", "IQ-ART-01") in kinds  # an IQ check that produced no result
    assert data["summary"]["failed"] == 2 and data["summary"]["passed"] == 4
    rec = next(r for r in data["results"] if r["check"] == "IQ-TIME-01")
    assert rec["requirements"] == ["URS-TM-01"]
    assert rec["executor"] == "tester" and rec["time_utc"] == "2026-12-02T08:00:00Z" and rec["host"] == "localhost"
    assert rec["code_version"] == package.code_version()["describe"]
    (att,) = rec["attachments"]
    assert (out / att["file"]).read_text() == "4.2" and att["sha256"] == package.sha256_file(out / att["file"])
    dash = next(r for r in data["results"] if r["check"] == "OQ-DASH-01")
    assert dash["attachments"][0]["file"].endswith("superset-batch-overview.png")
    assert data["coverage"]["URS-TM-01"]["result"] == "PASS"
    assert data["coverage"]["URS-IN-01"]["result"] == "not executed"
    assert data["coverage"]["URS-PC-01"]["result"] == "not in scope"


def test_json_html_and_pdf_are_written(built):
    out, data, _ = built
    assert json.loads((out / "qualification.json").read_text())["package_id"] == data["package_id"]
    page = (out / "report.html").read_text()
    for d in data["deviations"]:
        assert d["id"] in page
    assert "Reviewer" in page and "Approver" in page and "Result: <span class='FAIL'>FAIL" in page
    pdf = (out / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and len(pdf) > 10_000


def test_verify_an_intact_package(built, capsys):
    out, _, _ = built
    digest, changes = package.verify(out)
    assert changes == []
    assert digest == (out / "manifest.sha256").read_text().split()[0]
    main(["qualify", "verify", str(out), "--expect-sha256", digest])  # returns: exit 0
    assert "intact" in capsys.readouterr().out


def _copy(built, tmp_path) -> Path:
    import shutil

    dest = tmp_path / "copy"
    shutil.copytree(built[0], dest)
    return dest


def test_a_tampered_file_is_caught(built, tmp_path, capsys):
    pkg = _copy(built, tmp_path)
    data = json.loads((pkg / "qualification.json").read_text())
    data["result"] = "PASS"
    (pkg / "qualification.json").write_text(json.dumps(data))
    att = next(pkg.glob("attachments/*chronyc*"))
    att.write_text("0.1")
    (pkg / "attachments" / "extra.txt").write_text("added later")
    _, changes = package.verify(pkg)
    assert any(c.startswith("qualification.json: changed") for c in changes)
    assert any(c.startswith(f"attachments/{att.name}: changed") for c in changes)
    assert any(c.startswith("attachments/extra.txt: not in the manifest") for c in changes)
    with pytest.raises(SystemExit) as exit_:
        main(["qualify", "verify", str(pkg)])
    assert exit_.value.code == 1
    assert "change(s) since the package was written" in capsys.readouterr().err


def test_a_tampered_manifest_is_caught(built, tmp_path):
    pkg = _copy(built, tmp_path)
    original = (pkg / "manifest.sha256").read_text().split()[0]
    (pkg / "report.html").write_text("<p>all passed</p>")
    package.write_manifest(pkg)  # a manifest rewritten to match the edit ...
    (pkg / "manifest.sha256").write_text(f"{original}  manifest.json\n")  # ... behind the recorded hash
    _, changes = package.verify(pkg)
    assert any(c.startswith("manifest.json changed: manifest.sha256 records") for c in changes)
    digest = package.write_manifest(pkg)  # both rewritten: only the hash on the signed record catches it
    assert package.verify(pkg)[1] == []
    _, changes = package.verify(pkg, expect_sha256=original)
    assert changes == [f"manifest.json is not the one signed: expected {original}, got {digest}"]


def test_results_naming_an_unknown_check_are_refused(tmp_path):
    bad = [{"check": "IQ-NOPE-01", "host": "h", "actual": "", "passed": True}]
    with pytest.raises(package.PackageError, match="not in checks.yml: IQ-NOPE-01"):
        package.build(catalog.load(), bad, [], ("iq",), tmp_path / "p", pdf=False)


def test_not_ansible_output_is_one_clear_error(tmp_path):
    f = tmp_path / "iq.json"
    f.write_text("PLAY [x] ****\nok: [h]\n")
    with pytest.raises(evidence.EvidenceError, match="not the output of ansible's JSON callback"):
        evidence.from_ansible(f)
