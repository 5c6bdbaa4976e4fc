"""Turn what the qualification runs printed into check results.

Three sources, each a file the run leaves on the controller:

- ``ansible-playbook playbooks/qualify.yml -e phase=iq|oq`` with the JSON callback (``ANSIBLE_STDOUT_CALLBACK=
  ansible.posix.json``): every task whose result is a ``{"qualify_check": ...}`` message is one result (the playbook
  measures, it never fails a task); a failed or unreachable host or any change is an execution problem.
- ``ansible-playbook playbooks/site.yml --check --diff`` with the same callback: check IQ-CFG-01 per host (nothing
  would change = the managed configuration is what the roles render; the diffs are attached).
- ``lab/e2e_browser.py --out DIR`` (its ``checks.json``): its check lines, mapped to check ids below; the
  screenshots in DIR are attached to the dashboards check.

A result is a dict: check, host, actual, passed, time_utc, and optionally expected (overrides the catalog's),
evidence (name -> text, written as attachments) and files (paths of attachments).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

# lab/e2e_browser.py's check lines -> check ids (checks.yml). Every line must map to one.
BROWSER_CHECKS = [
    ("OQ-UI-01", re.compile(r"without a session")),
    ("OQ-UI-02", re.compile(r"^\w+ \([^)]*\) opens |^\w+ opens ")),
    ("OQ-LIN-01", re.compile(r"Marquez|lineage|written by the ingest step|datasets of namespace")),
    ("OQ-DASH-01", re.compile(r"dashboard|Chromium|signed in to Superset")),
]


class EvidenceError(ValueError):
    """An input file is not what the qualification run writes."""


def _load_ansible(path: Path) -> dict:
    text = path.read_text(errors="replace")
    # The JSON callback's document; before it may be a warning, after it another callback's lines (timer).
    start = text.find("{")
    try:
        doc = json.JSONDecoder().raw_decode(text[start:])[0] if start >= 0 else None
    except json.JSONDecodeError as exc:
        raise EvidenceError(f"{path}: not the output of ansible's JSON callback ({exc})") from None
    if not isinstance(doc, dict) or "plays" not in doc or "stats" not in doc:
        raise EvidenceError(f"{path}: not the output of ansible's JSON callback (no plays/stats)")
    return doc


def _tasks(doc: dict):
    for play in doc["plays"]:
        for task in play.get("tasks", []):
            for host, res in task.get("hosts", {}).items():
                yield play["play"].get("name", ""), task["task"], host, res


def from_ansible(path: Path) -> tuple[list[dict], list[str]]:
    """Results and execution problems of one qualify.yml run. IQ plays must change nothing; OQ plays (named
    "OQ: ...") write their test data and report it as changed."""
    doc = _load_ansible(path)
    results, problems = [], []
    read_only = not any(p["play"].get("name", "").startswith("OQ:") for p in doc["plays"])
    for play, task, host, res in _tasks(doc):
        msg = res.get("msg")
        if isinstance(msg, dict) and "qualify_check" in msg:
            r = {k: v for k, v in msg.items() if k != "qualify_check"}
            r["check"] = msg["qualify_check"]
            r.setdefault("host", host)
            r["passed"] = r.get("passed") in (True, "True", "true")  # a template may hand a bool over as text
            results.append(r)
        elif res.get("failed") and not res.get("ignore_errors"):
            problems.append(f"{path.name}: task '{task.get('name')}' failed on {host}: {_first_line(res)}")
        elif res.get("unreachable"):
            problems.append(f"{path.name}: {host} unreachable in play '{play}': {_first_line(res)}")
    for host, stats in doc["stats"].items():
        if stats.get("changed") and read_only:
            problems.append(f"{path.name}: {stats['changed']} task(s) changed something on {host} (must be read-only)")
        if stats.get("unreachable"):
            problems.append(f"{path.name}: {host} was unreachable")
    return results, problems


def _first_line(res: dict) -> str:
    text = str(res.get("msg") or res.get("stderr") or res.get("module_stderr") or "")
    return (text.strip().splitlines() or ["(no message)"])[0][:300]


def _diff_text(diff) -> str:
    parts = []
    for d in diff if isinstance(diff, list) else [diff]:
        if not isinstance(d, dict):
            continue
        if "prepared" in d:
            parts.append(str(d["prepared"]))
            continue
        before, after = d.get("before_header", "before"), d.get("after_header", "after")
        if isinstance(d.get("before"), str) or isinstance(d.get("after"), str):
            import difflib

            parts.append(
                "".join(
                    difflib.unified_diff(
                        str(d.get("before", "")).splitlines(True),
                        str(d.get("after", "")).splitlines(True),
                        before,
                        after,
                    )
                )
            )
        elif d.get("before") != d.get("after"):
            parts.append(f"--- {before}\n+++ {after}\n- {d.get('before')}\n+ {d.get('after')}\n")
    return "\n".join(p for p in parts if p)


def from_check_diff(path: Path) -> tuple[list[dict], list[str]]:
    """IQ-CFG-01 per host from ``site.yml --check --diff``: the tasks that would change something, with diffs."""
    doc = _load_ansible(path)
    changed: dict[str, list[tuple[str, str]]] = {h: [] for h in doc["stats"]}
    ended: dict[str, str] = {}
    for _play, task, host, res in _tasks(doc):
        ended[host] = task.get("duration", {}).get("end", ended.get(host, ""))
        items = res.get("results") if isinstance(res.get("results"), list) else [res]
        if not res.get("changed") and not any(isinstance(i, dict) and i.get("changed") for i in items):
            continue
        diffs = [_diff_text(i.get("diff", [])) for i in items if isinstance(i, dict) and i.get("changed")]
        changed.setdefault(host, []).append((task.get("name", "?"), "\n".join(d for d in diffs if d)))
    results = []
    for host, stats in doc["stats"].items():
        tasks = changed.get(host, [])
        broken = stats.get("failures") or stats.get("unreachable")
        actual = (
            "no task would change anything"
            if not tasks
            else f"{len(tasks)} task(s) would change the host: " + "; ".join(t for t, _ in tasks)
        )
        if broken:
            actual += f" (the check run failed on the host: failures={stats.get('failures')}, "
            actual += f"unreachable={stats.get('unreachable')})"
        text = "\n\n".join(f"## {t}\n{d or '(no diff shown by the module)'}" for t, d in tasks)
        results.append(
            {
                "check": "IQ-CFG-01",
                "host": host,
                "actual": actual,
                "passed": not tasks and not broken,
                "time_utc": _utc(ended.get(host, "")),
                "evidence": {"check-diff.txt": text} if tasks else {},
            }
        )
    return results, []


def _utc(stamp: str) -> str:
    """ansible's JSON callback times (ISO with +00:00 or Z) as YYYY-MM-DDTHH:MM:SSZ."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", stamp or "")
    return m[1] + "Z" if m else ""


def from_browser(out_dir: Path) -> tuple[list[dict], list[str]]:
    """The browser checks' lines (``checks.json`` in lab/e2e_browser.py's --out), one result per check id."""
    path = out_dir / "checks.json"
    try:
        lines = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EvidenceError(f"{path}: cannot read the browser checks ({exc})") from None
    grouped: dict[str, list[dict]] = {}
    problems = []
    for line in lines:
        cid = next((cid for cid, rx in BROWSER_CHECKS if rx.search(line["name"])), None)
        if cid is None:
            problems.append(f"browser check line maps to no check id: {line['name']}")
            continue
        grouped.setdefault(cid, []).append(line)
    results = []
    for cid, group in grouped.items():
        actual = "\n".join(
            f"{'ok' if g['ok'] else 'FAIL'}: {g['name']}" + ("" if g["ok"] else f" ({g.get('detail', '')})")
            for g in group
        )
        results.append(
            {
                "check": cid,
                "host": "controller (through the proxies)",
                "actual": actual,
                "passed": all(g["ok"] for g in group),
                "time_utc": max(g.get("at", "") for g in group),
                "files": sorted(str(p) for p in out_dir.glob("superset-*.png")) if cid == "OQ-DASH-01" else [],
            }
        )
    return results, problems
