"""The change record of an upgrade (or a rollback), generated before anything changes (ADR 0186).

Inputs, all files on the controller that playbooks/upgrade.yml (or rollback.yml) writes in its record directory:

- ``check-run.json``: ``site.yml --check --diff`` of the target, with ansible's JSON callback. From it, per host:
  every bundle component the roles would install (roles/artifact's tasks: the manifest entry it found and the
  sha256 of the file installed now), every configuration change with its diff, and every task check mode could not
  predict (commands, and tasks that only run for real), listed by name with the reason.
- the bundle manifests of both sides (``from`` may be absent: versions are then named by sha256 only);
- ``fingerprints.json`` (optional): per host the role-run records of roles/common's fingerprint log (what each
  role last ran from: commit, bundle manifest sha256).

Output: ``change-record.json`` (the evidence) and ``change-record.md`` (the same for a reviewer to read and sign).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pipelines.qualify.evidence import _diff_text, _load_ansible, _tasks

# 2: a side names bundle_source_commit (was `commit`) and, for the target, the checkout apart.
FORMAT = 2
ENTRY_TASK = "fetch | Find the component in the manifest"
INSTALLED_TASK = "fetch | Read the installed file's checksum"
# A diff longer than this many lines is cut in the Markdown (the JSON keeps all of it).
MD_DIFF_LINES = 60


def _task_name(task: dict) -> str:
    """A task's own name, without the `role : ` prefix an included role's task carries."""
    return str(task.get("name", "?")).split(" : ", 1)[-1]


def _versions(manifest: dict | None) -> dict[str, dict]:
    """sha256 -> manifest entry."""
    return {a["sha256"]: a for a in (manifest or {}).get("artifacts", []) if "sha256" in a}


def _items(res: dict) -> list[dict]:
    return [i for i in res.get("results", []) if isinstance(i, dict)] if isinstance(res.get("results"), list) else []


def _unpredicted_reason(res: dict) -> str | None:
    """Why check mode did not predict this result, or None when it did."""
    for r in [res, *_items(res)]:
        if not r.get("skipped"):
            continue
        cond = str(r.get("false_condition", ""))
        msg = str(r.get("msg", "") or r.get("skip_reason", ""))
        if "ansible_check_mode" in cond:
            return f"runs only for real (condition: {cond})"
        if "check mode" in msg.lower():
            return msg
    return None


def _fingerprint_summary(lines: list) -> dict[str, dict]:
    """role -> its newest run record (fingerprint log lines are JSON, oldest first; bad lines are skipped)."""
    newest: dict[str, dict] = {}
    for line in lines:
        try:
            rec = json.loads(line) if isinstance(line, str) else line
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and rec.get("role"):
            newest[rec["role"]] = {
                k: rec.get(k) for k in ("version", "commit", "bundle_manifest_sha256", "inventory_commit", "at_utc")
            }
    return newest


def build(
    check_run: Path,
    to_manifest: dict,
    from_manifest: dict | None = None,
    fingerprints: dict | None = None,
    from_release: dict | None = None,
    to_release: dict | None = None,
    kind: str = "upgrade",
) -> dict:
    """The change record as a dict (see the module docstring)."""
    doc = _load_ansible(check_run)
    known_from, known_to = _versions(from_manifest), _versions(to_manifest)
    hosts: dict[str, dict] = {
        h: {"components": [], "configuration": [], "unpredicted": [], "failed_tasks": [], "installed_from": {}}
        for h in doc["stats"]
    }
    pending: dict[str, dict] = {}
    for _play, task, host, res in _tasks(doc):
        h = hosts.setdefault(
            host, {"components": [], "configuration": [], "unpredicted": [], "failed_tasks": [], "installed_from": {}}
        )
        name = _task_name(task)
        if name == ENTRY_TASK and isinstance(res.get("ansible_facts", {}).get("__artifact_entry"), dict):
            pending[host] = res["ansible_facts"]["__artifact_entry"]
            continue
        if name == INSTALLED_TASK and host in pending:
            entry = pending.pop(host)
            stat = res.get("stat", {})
            now_sha = stat.get("checksum") if stat.get("exists") else None
            before = known_from.get(now_sha) or known_to.get(now_sha) or {}
            h["components"].append(
                {
                    "component": entry.get("component"),
                    "path": res.get("invocation", {}).get("module_args", {}).get("path", ""),
                    "from_version": before.get("version") if now_sha else "(not installed)",
                    "from_sha256": now_sha,
                    "to_version": entry.get("version"),
                    "to_sha256": entry.get("sha256"),
                    "changes": now_sha != entry.get("sha256"),
                }
            )
            continue
        if res.get("failed") and not res.get("ignore_errors"):
            msg = str(res.get("msg") or res.get("stderr") or "").strip().splitlines()
            h["failed_tasks"].append({"task": task.get("name", "?"), "message": (msg or [""])[0][:300]})
            continue
        reason = _unpredicted_reason(res)
        if reason:
            h["unpredicted"].append({"task": task.get("name", "?"), "reason": reason})
            continue
        items = _items(res) or [res]
        if res.get("changed") or any(i.get("changed") for i in items):
            diffs = [_diff_text(i.get("diff", [])) for i in items if i.get("changed")]
            h["configuration"].append(
                {"task": task.get("name", "?"), "diff": "\n".join(d for d in diffs if d) or "(no diff shown)"}
            )
    for host, lines in (fingerprints or {}).items():
        if host in hosts:
            hosts[host]["installed_from"] = _fingerprint_summary(lines)
    problems = []
    for host, stats in doc["stats"].items():
        if stats.get("failures") or stats.get("unreachable"):
            problems.append(
                f"the check run failed on {host} (failures={stats.get('failures')}, "
                f"unreachable={stats.get('unreachable')}): its record is incomplete"
            )
    return {
        "change_record": FORMAT,
        "kind": kind,
        "generated_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "from": from_release or {},
        "to": to_release or {},
        "hosts": dict(sorted(hosts.items())),
        "problems": problems,
        "summary": {
            host: {
                "components_changing": sum(c["changes"] for c in h["components"]),
                "components": len(h["components"]),
                "configuration_changes": len(h["configuration"]),
                "unpredicted_tasks": len(h["unpredicted"]),
                "failed_in_check": len(h["failed_tasks"]),
            }
            for host, h in sorted(hosts.items())
        },
    }


def _short(sha: str | None) -> str:
    return f"`{sha[:12]}`" if sha else "-"


def _side(side: dict) -> str:
    """One side of the change, each commit labelled by what it is: the checkout that runs the change (its HEAD and
    `git describe`) and the commit the bundle was built from (the roles of the one install the artifacts of the
    other; they differ only when the change's input allowed it)."""
    if not side:
        return "(not given)"
    parts = [f"release {side.get('release') or '?'}"]
    if side.get("checkout_commit"):
        parts.append(f"checkout `{side['checkout_commit'][:12]}` (`git describe`: {side.get('checkout_describe')})")
    source = side.get("bundle_source_commit") or side.get("commit")  # `commit`: records of format 1
    if source:
        allowed = " (not the checkout's HEAD: allowed by the change's input)" * bool(side.get("bundle_commit_allowed"))
        parts.append(f"bundle built from `{source[:12]}`{allowed}")
    if side.get("bundle_manifest_sha256"):
        parts.append(f"bundle manifest sha256 `{side['bundle_manifest_sha256']}`")
    return ", ".join(parts)


def render_markdown(rec: dict) -> str:
    out = [
        f"# Change record: {rec['kind']}",
        "",
        f"Generated {rec['generated_utc']} before anything changed, from `site.yml --check --diff` of the target "
        "(docs/operations/upgrade.md). The JSON beside this file is the complete evidence; diffs are cut here after "
        f"{MD_DIFF_LINES} lines.",
        "",
        f"- From: {_side(rec['from'])}",
        f"- To: {_side(rec['to'])}",
        "",
    ]
    if rec["problems"]:
        out += ["**Problems**", "", *[f"- {p}" for p in rec["problems"]], ""]
    out += [
        "| host | components changing / installed | configuration changes | tasks check mode cannot predict |"
        " failed in check |",
        "|---|---:|---:|---:|---:|",
    ]
    for host, s in rec["summary"].items():
        out.append(
            f"| {host} | {s['components_changing']} / {s['components']} | {s['configuration_changes']} | "
            f"{s['unpredicted_tasks']} | {s['failed_in_check']} |"
        )
    for host, h in rec["hosts"].items():
        out += ["", f"## {host}", ""]
        if h["installed_from"]:
            out += ["Installed now (newest run of each role, from its fingerprint):", ""]
            out += ["| role | code | commit | bundle manifest | at (UTC) |", "|---|---|---|---|---|"]
            for role, f in sorted(h["installed_from"].items()):
                out.append(
                    f"| {role} | {f.get('version') or '-'} | {_short(f.get('commit'))} | "
                    f"{_short(f.get('bundle_manifest_sha256'))} | {f.get('at_utc') or '-'} |"
                )
            out.append("")
        if h["components"]:
            out += ["| component | from | to | changes |", "|---|---|---|---|"]
            for c in h["components"]:
                out.append(
                    f"| {c['component']} (`{c['path']}`) | {c['from_version'] or '?'} {_short(c['from_sha256'])} | "
                    f"{c['to_version']} {_short(c['to_sha256'])} | {'**yes**' if c['changes'] else 'no'} |"
                )
            out.append("")
        out.append(f"Configuration changes predicted by check mode: {len(h['configuration'])}")
        for c in h["configuration"]:
            lines = c["diff"].splitlines()
            cut = lines[:MD_DIFF_LINES] + (
                [f"... {len(lines) - MD_DIFF_LINES} more lines"] if len(lines) > MD_DIFF_LINES else []
            )
            out += ["", f"- {c['task']}", "", "  ```diff", *[f"  {line}" for line in cut], "  ```"]
        out += ["", f"Tasks check mode cannot predict (they run in the real change): {len(h['unpredicted'])}", ""]
        out += [f"- {u['task']}: {u['reason']}" for u in h["unpredicted"]]
        if h["failed_tasks"]:
            out += ["", "Failed in the check run:", ""]
            out += [f"- {f['task']}: {f['message']}" for f in h["failed_tasks"]]
    return "\n".join(out) + "\n"


def write(rec: dict, out_dir: Path, stem: str = "change-record") -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    js.write_text(json.dumps(rec, indent=2, sort_keys=False) + "\n")
    md.write_text(render_markdown(rec))
    return js, md
