"""Validation results as files people and auditors read: JSON (electronic copy) and HTML (human-readable copy).

``HOME/validation/``
  ``<feed>/<sha256>.json``   the verdict on one raw file: outcome, reason, suite version, every expectation with
                             its policy, success and failing row numbers (1-based rows of the raw file)
  ``<feed>/<sha256>.html``   the same, rendered (self-contained, no scripts)
  ``gx/<run_id>/<feed>-<n>.json``  Great Expectations' own result JSON for each batch it validated
  ``index.html``             every file report, newest first

GE 1.x data docs need a file-backed context; this small renderer works from the result JSON instead.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

MAX_ROWS_LISTED = 50


def save_gx_result(root: Path, run_id: str, feed: str, gx_json: dict[str, Any]) -> Path:
    out = root / "gx" / run_id
    out.mkdir(parents=True, exist_ok=True)
    n = len(list(out.glob(f"{feed}-*.json")))
    path = out / f"{feed}-{n + 1}.json"
    path.write_text(json.dumps(gx_json, default=str) + "\n")
    return path


def write_file_report(
    root: Path, verdict: Any, manifest: dict[str, Any], suite: Any, per_rule: list, coerce_errors: dict[str, np.ndarray]
) -> str:
    expectations = []
    for rule, idx in per_rule:
        rows = (np.asarray(idx, dtype=np.int64) + 1)[:MAX_ROWS_LISTED]  # frame position -> 1-based data row
        expectations.append(
            {
                "name": rule.name,
                "type": rule.type,
                "column": rule.column,
                "policy": rule.policy,
                "why": rule.why,
                "success": len(idx) == 0,
                "unexpected_rows": int(len(idx)),
                "first_rows": rows.tolist(),
            }
        )
    for column, mask in coerce_errors.items():
        rows_of = np.flatnonzero(mask) + 1
        expectations.append(
            {
                "name": f"{column}_unparseable",
                "type": "type coercion (pipelines/sources.py)",
                "column": column,
                "policy": "reject",
                "why": "the text is not a valid value of the column's type",
                "success": False,
                "unexpected_rows": int(len(rows_of)),
                "first_rows": rows_of[:MAX_ROWS_LISTED].tolist(),
            }
        )
    doc = {
        "file": manifest["original_name"],
        "source_path": manifest["original_path"],
        "feed": verdict.feed,
        "sha256": verdict.sha256,
        "size_bytes": manifest["size_bytes"],
        "raw_uri": verdict.raw_uri,
        "outcome": verdict.outcome,
        "reason": verdict.reason,
        "reason_kind": verdict.reason_kind,
        "suite": verdict.suite,
        "rows_accepted": verdict.rows_accepted,
        "rows_flagged": verdict.rows_flagged,
        "rows_rejected": verdict.rows_rejected,
        "landing_uri": verdict.landing_uri,
        "rejected_uri": verdict.rejected_uri,
        "quarantine_uri": verdict.quarantine_uri,
        "expectations": expectations,
    }
    out = root / (verdict.feed or "_unknown")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{verdict.sha256}.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    path = out / f"{verdict.sha256}.html"
    path.write_text(render(doc))
    return str(path.resolve())


_CSS = (
    "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
    "td,th{border:1px solid #bbb;padding:4px 8px;text-align:left;vertical-align:top}"
    ".ok{color:#17692e}.bad{color:#b00020;font-weight:bold}.flag{color:#8a5a00}"
)


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def render(doc: dict[str, Any]) -> str:
    outcome_class = "ok" if doc["outcome"] == "accepted" else "bad"
    facts = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(doc[k])}</td></tr>"
        for k in (
            "file",
            "source_path",
            "feed",
            "sha256",
            "size_bytes",
            "raw_uri",
            "suite",
            "rows_accepted",
            "rows_flagged",
            "rows_rejected",
            "landing_uri",
            "rejected_uri",
            "quarantine_uri",
        )
        if doc.get(k) is not None
    )
    rows = ""
    for e in doc["expectations"]:
        cls = "ok" if e["success"] else ("flag" if e["policy"] == "flag" else "bad")
        result = "passed" if e["success"] else f"{e['unexpected_rows']} rows"
        listed = ", ".join(str(r) for r in e["first_rows"])
        rows += (
            f"<tr><td>{_e(e['name'])}</td><td>{_e(e['column'])}</td><td>{_e(e['type'])}</td><td>{_e(e['policy'])}</td>"
            f"<td class='{cls}'>{_e(result)}</td><td>{_e(listed)}</td><td>{_e(e['why'])}</td></tr>"
        )
    table = (
        "<h2>Expectations</h2><table><tr><th>name</th><th>column</th><th>expectation</th><th>policy</th>"
        f"<th>result</th><th>first failing data rows</th><th>why</th></tr>{rows}</table>"
        if rows
        else ""
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(doc['file'])}: {_e(doc['outcome'])}</title>"
        f"<style>{_CSS}</style></head><body><h1>{_e(doc['file'])}</h1>"
        f"<p class='{outcome_class}'>Outcome: {_e(doc['outcome'])}"
        + (f" — {_e(doc['reason'])}" if doc.get("reason") else "")
        + f"</p><table>{facts}</table>{table}</body></html>\n"
    )


def write_index(root: Path) -> Path:
    docs = []
    for p in root.glob("*/*.json"):
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        docs.append((p.stat().st_mtime, p.with_suffix(".html").relative_to(root), d))
    docs.sort(key=lambda t: t[0], reverse=True)
    rows = "".join(
        f"<tr><td><a href='{_e(rel)}'>{_e(d['file'])}</a></td><td>{_e(d['feed'])}</td>"
        f"<td class='{'ok' if d['outcome'] == 'accepted' else 'bad'}'>{_e(d['outcome'])}</td>"
        f"<td>{_e(d['rows_accepted'])}</td><td>{_e(d['rows_rejected'])}</td><td>{_e(d['reason'])}</td></tr>"
        for _t, rel, d in docs
    )
    root.mkdir(parents=True, exist_ok=True)
    path = root / "index.html"
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Validation reports</title><style>{_CSS}</style>"
        "</head><body><h1>Validation reports</h1><table><tr><th>file</th><th>feed</th><th>outcome</th>"
        f"<th>rows accepted</th><th>rows rejected</th><th>reason</th></tr>{rows}</table></body></html>\n"
    )
    return path
