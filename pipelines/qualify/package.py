"""The evidence package of one qualification run, and its verification.

A package is a directory:

    qualification.json   every check result (requirement IDs, expected, actual, pass/fail, UTC time, executor,
                         code version, host, attachments with SHA-256), the deviations, summary counts, coverage
    report.html          the same for people, with the reviewer's and approver's signature blocks
    report.pdf           report.html printed by headless Chromium (scripts/chromium.py)
    attachments/         evidence files (diffs, command output, screenshots), each hashed in the JSON
    manifest.json        every file above with its SHA-256 and size
    manifest.sha256      the SHA-256 of manifest.json (also printed: write it on the signed record)

A failing check, a check of the run's phases that did not run, or a problem running the checks is a deviation and
makes the run FAIL; the package is written all the same. ``verify`` recomputes every hash and names each change.
"""

from __future__ import annotations

import getpass
import html
import json
import re
import shutil
import socket
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pipelines import storage
from pipelines.paths import _CHECKOUT
from pipelines.qualify.catalog import Catalog

FORMAT = 1
JSON_NAME, HTML_NAME, PDF_NAME = "qualification.json", "report.html", "report.pdf"
MANIFEST, MANIFEST_HASH = "manifest.json", "manifest.sha256"


class PackageError(ValueError):
    """The package cannot be built or read (one line)."""


def sha256_file(path: Path) -> str:
    return storage.sha256_file(path)[0]


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def code_version(repo: Path = _CHECKOUT) -> dict:
    """The checkout the checks ran from: `git describe --dirty` and the commit (unknown outside a checkout)."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                                  timeout=30).stdout.strip() or "unknown"  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return "unknown"

    return {"describe": git("describe", "--always", "--dirty"), "commit": git("rev-parse", "HEAD")}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80]


def build(
    cat: Catalog,
    results: list[dict],
    problems: list[str],
    phases: tuple[str, ...],
    out: Path,
    *,
    title: str = "",
    executor: str | None = None,
    system: str = "",
    started_utc: str | None = None,
    pdf: bool = True,
) -> dict:
    """Write the package into ``out`` (must not exist yet, or be empty); return qualification.json's content."""
    if out.exists() and any(out.iterdir()):
        raise PackageError(f"{out} exists and is not empty: a package is written once, into a new directory")
    unknown = sorted({r["check"] for r in results} - set(cat.checks))
    if unknown:
        raise PackageError(f"results name checks that are not in checks.yml: {', '.join(unknown)}")
    problems = list(problems)
    (out / "attachments").mkdir(parents=True, exist_ok=True)
    version = code_version()
    executor = executor or getpass.getuser()
    records = []
    for n, r in enumerate(sorted(results, key=lambda r: (r["check"], r.get("host", ""))), start=1):
        chk = cat.checks[r["check"]]
        attachments = []
        for name, text in (r.get("evidence") or {}).items():
            dest = out / "attachments" / f"{n:03d}-{_safe(chk.id)}-{_safe(r.get('host', ''))}-{_safe(name)}"
            dest.write_text(text if isinstance(text, str) else json.dumps(text, indent=2, default=str))
            attachments.append(dest)
        for src in r.get("files") or []:
            src = Path(src)
            if not src.is_file():
                problems.append(f"{chk.id} on {r.get('host')}: attachment {src} does not exist")
                continue
            dest = out / "attachments" / f"{n:03d}-{_safe(chk.id)}-{_safe(src.name)}"
            shutil.copyfile(src, dest)
            attachments.append(dest)
        records.append(
            {
                "n": n,
                "check": chk.id,
                "title": chk.title,
                "phase": chk.phase,
                "requirements": chk.requirements,
                "host": r.get("host", ""),
                "expected": r.get("expected") or chk.expected,
                "actual": r.get("actual", ""),
                "result": "PASS" if r["passed"] else "FAIL",
                "time_utc": r.get("time_utc") or utc_now(),
                "executor": r.get("executor") or executor,
                "code_version": r.get("code_version") or version["describe"],
                "attachments": [
                    {"file": str(a.relative_to(out)), "sha256": sha256_file(a), "size": a.stat().st_size}
                    for a in attachments
                ],
            }
        )
    executed = {r["check"] for r in records}
    expected_checks = cat.phase_checks(phases)
    deviations = [
        {
            "kind": "failed check",
            "check": r["check"],
            "host": r["host"],
            "requirements": r["requirements"],
            "text": f"expected: {r['expected']} | actual: {r['actual']}",
            "record": r["n"],
        }  # fmt: skip
        for r in records
        if r["result"] == "FAIL"
    ]
    deviations += [
        {
            "kind": "check not executed",
            "check": c.id,
            "host": "",
            "requirements": c.requirements,
            "text": f"{c.id} ({c.title}) of phase {c.phase.upper()} produced no result",
            "record": None,
        }  # fmt: skip
        for c in expected_checks
        if c.id not in executed
    ]
    deviations += [
        {"kind": "execution problem", "check": "", "host": "", "requirements": [], "text": p, "record": None}
        for p in problems
    ]
    for i, d in enumerate(deviations, start=1):
        d["id"] = f"DEV-{i:03d}"
    coverage = {}
    for rid in cat.requirements:
        ran = [r for r in records if rid in r["requirements"]]
        in_scope = [c.id for c in cat.checks_for(rid) if c.phase in phases]
        coverage[rid] = {
            "checks_in_scope": in_scope,
            "executed": sorted({r["check"] for r in ran}),
            "result": (
                "not in scope"
                if not in_scope
                else "not executed"
                if not ran
                else "PASS"
                if all(r["result"] == "PASS" for r in ran)
                else "FAIL"
            ),  # fmt: skip
        }
    summary = {
        "checks_in_scope": len(expected_checks),
        "checks_executed": len(executed),
        "results": len(records),
        "passed": sum(r["result"] == "PASS" for r in records),
        "failed": sum(r["result"] == "FAIL" for r in records),
        "deviations": len(deviations),
        "requirements_in_scope": sum(c["result"] != "not in scope" for c in coverage.values()),
        "requirements_covered": sum(c["result"] in ("PASS", "FAIL") for c in coverage.values()),
    }
    data = {
        "format": FORMAT,
        "package_id": str(uuid.uuid4()),
        "title": title or f"CGT Lakehouse {'+'.join(p.upper() for p in phases)} qualification",
        "phases": list(phases),
        "system": system,
        "result": "PASS" if not deviations else "FAIL",
        "started_utc": started_utc or (min(r["time_utc"] for r in records) if records else utc_now()),
        "finished_utc": utc_now(),
        "executor": executor,
        "controller": socket.getfqdn(),
        "code_version": version,
        "urs_version": cat.document.get("version", ""),
        "summary": summary,
        "deviations": deviations,
        "coverage": coverage,
        "results": records,
    }
    (out / JSON_NAME).write_text(json.dumps(data, indent=2) + "\n")
    (out / HTML_NAME).write_text(render_html(cat, data))
    if pdf:
        print_pdf(out / HTML_NAME, out / PDF_NAME, footer=f"{data['title']} · package {data['package_id']}")
    write_manifest(out)
    return data


def write_manifest(out: Path) -> str:
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name not in (MANIFEST, MANIFEST_HASH))
    manifest = {
        "format": FORMAT,
        "files": [{"path": str(p.relative_to(out)), "sha256": sha256_file(p), "size": p.stat().st_size} for p in files],
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    digest = sha256_file(out / MANIFEST)
    (out / MANIFEST_HASH).write_text(f"{digest}  {MANIFEST}\n")
    return digest


def verify(package: Path, expect_sha256: str | None = None) -> tuple[str, list[str]]:
    """Recompute every hash of the package: (the manifest's sha256, one line per change found)."""
    if not (package / MANIFEST).is_file():
        raise PackageError(f"{package}: no {MANIFEST} (not a qualification package)")
    changes = []
    digest = sha256_file(package / MANIFEST)
    recorded = (package / MANIFEST_HASH).read_text().split()[0] if (package / MANIFEST_HASH).is_file() else None
    if recorded is None:
        changes.append(f"{MANIFEST_HASH} is missing")
    elif recorded != digest:
        changes.append(f"{MANIFEST} changed: {MANIFEST_HASH} records {recorded}, the file hashes to {digest}")
    if expect_sha256 and expect_sha256 != digest:
        changes.append(f"{MANIFEST} is not the one signed: expected {expect_sha256}, got {digest}")
    try:
        listed = {f["path"]: f for f in json.loads((package / MANIFEST).read_text())["files"]}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        return digest, [*changes, f"{MANIFEST} is unreadable: {exc}"]
    present = {str(p.relative_to(package)) for p in package.rglob("*") if p.is_file()} - {MANIFEST, MANIFEST_HASH}
    for path in sorted(set(listed) - present):
        changes.append(f"{path}: missing (listed in the manifest)")
    for path in sorted(present - set(listed)):
        changes.append(f"{path}: not in the manifest (added after the package was written)")
    for path in sorted(set(listed) & present):
        actual = sha256_file(package / path)
        if actual != listed[path]["sha256"]:
            changes.append(f"{path}: changed (manifest {listed[path]['sha256'][:16]}…, now {actual[:16]}…)")
    if JSON_NAME in present:
        try:
            data = json.loads((package / JSON_NAME).read_text())
            for r in data["results"]:
                for a in r["attachments"]:
                    f = package / a["file"]
                    if f.is_file() and sha256_file(f) != a["sha256"]:
                        changes.append(f"{a['file']}: differs from the hash in {JSON_NAME} (result {r['n']})")
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            changes.append(f"{JSON_NAME} is unreadable: {exc}")
    return digest, changes


# ---- human-readable report ---------------------------------------------------------------------------------------
CSS = """
body{font:10pt/1.35 'DejaVu Sans',sans-serif;margin:0;color:#111}
h1{font-size:17pt;margin:0 0 4pt} h2{font-size:13pt;margin:16pt 0 6pt;border-bottom:1px solid #999}
table{border-collapse:collapse;width:100%;margin:4pt 0} th,td{border:1px solid #aaa;padding:2pt 4pt;
vertical-align:top;text-align:left;overflow-wrap:break-word} th{background:#eee}
.PASS{color:#075e07;font-weight:bold} .FAIL{color:#b00000;font-weight:bold}
.banner{font-size:15pt;padding:6pt;border:2px solid;margin:6pt 0} .banner.PASS{border-color:#075e07}
.banner.FAIL{border-color:#b00000} pre{white-space:pre-wrap;word-break:break-all;font-size:8pt;margin:0}
.sig td{height:34pt} .small{font-size:8pt;color:#333} img{max-width:100%;border:1px solid #aaa}
tr{page-break-inside:avoid} .pb{page-break-before:always} .nw{white-space:nowrap}
"""


def _e(v: object) -> str:
    return html.escape(str(v))


def render_html(cat: Catalog, d: dict) -> str:
    s, v = d["summary"], d["code_version"]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(d['title'])}</title><style>{CSS}</style>"
        "</head><body>",
        f"<h1>{_e(d['title'])}</h1>",
        f"<div class='banner {d['result']}'>Result: <span class='{d['result']}'>{d['result']}</span> — "
        f"{s['passed']} passed, {s['failed']} failed, {s['deviations']} deviation(s); "
        f"{s['requirements_covered']} of {s['requirements_in_scope']} requirements in scope traced to an executed "
        "check</div>",
        "<table>",
        *(
            f"<tr><th>{_e(k)}</th><td>{_e(val)}</td></tr>"
            for k, val in [
                ("Package id", d["package_id"]),
                ("System", d["system"]),
                ("Phases", ", ".join(p.upper() for p in d["phases"])),
                ("Started / finished (UTC)", f"{d['started_utc']} / {d['finished_utc']}"),
                ("Executor", f"{d['executor']} on {d['controller']}"),
                ("Code version", f"{v['describe']} (commit {v['commit']})"),
                ("URS version", d["urs_version"]),
            ]
        ),
        "</table>",
        "<p class='small'>Integrity: every file of this package is listed with its SHA-256 in manifest.json; the "
        "SHA-256 of manifest.json is in manifest.sha256. <code>lakehouse qualify verify PACKAGE</code> recomputes "
        "them all. Write the manifest's SHA-256 on the signature page below.</p>",
        "<h2>Deviations</h2>",
    ]
    if d["deviations"]:
        parts.append("<table><tr><th>ID</th><th>Kind</th><th>Check</th><th>Host</th><th>Requirements</th>"
                     "<th>Description</th></tr>")  # fmt: skip
        parts += [
            f"<tr><td class='nw'>{_e(x['id'])}</td><td>{_e(x['kind'])}</td><td class='nw'>{_e(x['check'])}</td>"
            f"<td>{_e(x['host'])}</td>"
            f"<td>{_e(', '.join(x['requirements']))}</td><td>{_e(x['text'])}</td></tr>"
            for x in d["deviations"]
        ]
        parts.append("</table>")
    else:
        parts.append("<p>None: every check in scope ran and passed.</p>")
    parts += [
        "<h2>Summary</h2><table>",
        *(f"<tr><th>{_e(k.replace('_', ' '))}</th><td>{_e(val)}</td></tr>" for k, val in s.items()),
        "</table>",
        "<h2>Requirement coverage</h2><table><tr><th>Requirement</th><th>Checks in scope</th><th>Executed</th>"
        "<th>Result</th></tr>",
    ]
    for rid, c in d["coverage"].items():
        title = cat.requirements[rid].title if rid in cat.requirements else ""
        parts.append(
            f"<tr><td>{_e(rid)} {_e(title)}</td><td>{_e(', '.join(c['checks_in_scope']))}</td>"
            f"<td>{_e(', '.join(c['executed']))}</td><td class='{_e(c['result'])}'>{_e(c['result'])}</td></tr>"
        )
    parts += [
        "</table>",
        "<h2 class='pb'>Check results</h2>",
        "<table><tr><th>#</th><th>Check / requirements</th><th>Host</th><th>Expected</th><th>Actual</th>"
        "<th>Result</th><th>Time (UTC), executor, code</th></tr>",
    ]
    for r in d["results"]:
        att = "".join(f"<br><span class='small'>{_e(a['file'])}<br>sha256 {_e(a['sha256'])}</span>"
                      for a in r["attachments"])  # fmt: skip
        parts.append(
            f"<tr><td>{r['n']}</td><td><b class='nw'>{_e(r['check'])}</b> {_e(r['title'])}<br>"
            f"<span class='small'>{_e(', '.join(r['requirements']))}</span></td><td>{_e(r['host'])}</td>"
            f"<td>{_e(r['expected'])}</td><td><pre>{_e(r['actual'])}</pre>{att}</td>"
            f"<td class='{r['result']}'>{r['result']}</td>"
            f"<td class='small'>{_e(r['time_utc'])}<br>{_e(r['executor'])}<br>{_e(r['code_version'])}</td></tr>"
        )
    parts.append("</table>")
    images = [a for r in d["results"] for a in r["attachments"] if a["file"].endswith(".png")]
    if images:
        parts.append("<h2 class='pb'>Screenshots</h2>")
        parts += [f"<p class='small'>{_e(a['file'])} (sha256 {_e(a['sha256'])})</p><img src='{_e(a['file'])}'>"
                  for a in images]  # fmt: skip
    parts += [
        "<h2 class='pb'>Signatures</h2>",
        "<p>By signing, the reviewer confirms the results and every deviation above were reviewed; the approver "
        "approves the qualification with the deviations as dispositioned.</p>",
        "<p>SHA-256 of manifest.json (from <code>lakehouse qualify verify</code>): "
        "____________________________________________</p>",
    ]
    for role in ("Reviewer", "Approver"):
        parts.append(
            f"<h3>{role}</h3><table class='sig'><tr><th style='width:25%'>Name</th><td></td></tr>"
            "<tr><th>Role / function</th><td></td></tr><tr><th>Signature</th><td></td></tr>"
            "<tr><th>Date (UTC)</th><td></td></tr><tr><th>Deviations dispositioned</th><td></td></tr></table>"
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _chromium_module():
    """scripts/chromium.py, the project's one DevTools driver (present in a checkout, which qualification runs
    from)."""
    import importlib.util

    path = _CHECKOUT / "scripts" / "chromium.py"
    if not path.is_file():
        raise PackageError(f"PDF needs {path} (run `lakehouse qualify` from a checkout of the repository)")
    spec = importlib.util.spec_from_file_location("cgt_chromium", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def print_pdf(html_file: Path, pdf_file: Path, footer: str, chromium: str = "/usr/bin/chromium") -> None:
    """Print html_file to an A4 PDF with headless Chromium (DevTools Page.printToPDF), page X of Y in the footer."""
    import base64

    browser = _chromium_module().Browser(chromium)
    try:
        browser.goto(html_file.resolve().as_uri())
        result = browser.call(
            "Page.printToPDF",
            paperWidth=8.27,
            paperHeight=11.69,
            marginTop=0.5,
            marginBottom=0.6,
            marginLeft=0.5,
            marginRight=0.5,
            printBackground=True,
            displayHeaderFooter=True,
            headerTemplate="<span></span>",
            footerTemplate=(
                "<div style='font-size:7pt;width:100%;padding:0 12mm;display:flex;justify-content:space-between'>"
                f"<span>{_e(footer)}</span><span>page <span class='pageNumber'></span> of "
                "<span class='totalPages'></span></span></div>"
            ),
        )
        pdf_file.write_bytes(base64.b64decode(result["data"]))
    finally:
        browser.close()
