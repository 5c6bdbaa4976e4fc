"""The audit trail of one batch: what QA reviews before disposition (``lakehouse audit-trail BATCH``).

Everything comes from the record, nothing is recomputed from memory:

* **files** — every raw file with rows of the batch (the landing Parquet of every feed with a ``batch_id``
  column, all versions, and the rejected rows), with SHA-256, each delivery (name, path, received, ingest run),
  its outcome and reason, rows landed / current in the curated table / superseded / flagged / rejected;
* **quarantined** — files quarantined whose name names the batch (their rows never parsed);
* **corrections** — keys of the batch delivered more than once: every version (file, ingested) with the one
  the curated table holds; superseded versions stay in the landing Parquet and the raw zone;
* **flags / rejects** — row counts per data-quality rule;
* **late / re-delivered** — deliveries received after the batch's disposition, and duplicate deliveries;
* **runs** — every run that ingested, validated or built the batch's rows, with its status from the run ledger.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pipelines import control, duck, ledger
from pipelines.resources import Resources
from pipelines.settings import Settings
from pipelines.sources import FEEDS, Feed


class AuditError(RuntimeError):
    """The audit trail cannot be produced (unknown batch); one line."""


def batch_feeds() -> list[Feed]:
    return [f for f in FEEDS if "batch_id" in f.column_names]


def _curated_table(feed: Feed, existing: set[str]) -> str | None:
    for name in (feed.entity, f"{feed.system}_{feed.entity}"):
        if name in existing:
            return name
    return None


def audit_trail(settings: Settings | Resources, batch_id: str) -> dict[str, Any]:
    """The audit trail of ``batch_id`` as a dict (see the module doc); AuditError if nothing mentions it."""
    res = Resources.of(settings)
    root = duck.lake_root(res.settings)
    files: dict[str, dict[str, Any]] = {}
    flags: dict[str, int] = defaultdict(int)
    rejects: dict[str, int] = defaultdict(int)
    corrections: list[dict[str, Any]] = []
    build_runs: set[str] = set()
    disposition_at = None
    with res.duckdb(marts=False, read_only=True) as con:
        existing = {
            r[0]
            for r in con.execute(
                "select table_name from duckdb_tables() where database_name = ? and schema_name = ?",
                [duck.LAKE_ALIAS, duck.CURATED_SCHEMA],
            ).fetchall()
        }
        for feed in batch_feeds():
            landing = f"read_parquet('{root}/landing/{feed.name}/*.parquet', union_by_name = true)"
            rows = con.execute(
                f"select _source_sha256, any_value(_source_file), count(*), count(_dq_flags), "
                f"min(_ingested_at), any_value(_ingest_run_id) from {landing} where batch_id = ? group by 1",
                [batch_id],
            ).fetchall()
            for sha, name, n, n_flagged, ingested, ingest_run in rows:
                files[sha] = {
                    "feed": feed.name,
                    "sha256": sha,
                    "file": name,
                    "rows_landed": n,
                    "rows_flagged": n_flagged,
                    "rows_rejected": 0,
                    "rows_current": 0,
                    "ingested_at": control.iso(ingested),
                    "ingest_run_id": ingest_run,
                }
            for (flag_list,) in con.execute(
                f"select _dq_flags from {landing} where batch_id = ? and _dq_flags is not null", [batch_id]
            ).fetchall():
                for name in flag_list.split(";"):
                    flags[name] += 1
            rejected = f"read_parquet('{root}/rejected/{feed.name}/*.parquet', union_by_name = true)"
            for sha, name, reasons in con.execute(
                f"select _source_sha256, any_value(_source_file), list(_reject_reasons) from {rejected} "
                "where batch_id = ? group by 1",
                [batch_id],
            ).fetchall():
                entry = files.setdefault(
                    sha,
                    {"feed": feed.name, "sha256": sha, "file": name, "rows_landed": 0, "rows_flagged": 0}
                    | {"rows_current": 0, "ingested_at": None, "ingest_run_id": None},
                )
                entry["rows_rejected"] = len(reasons)
                for reason in reasons:
                    for name in (reason or "").split(";"):
                        rejects[name] += 1
            table = _curated_table(feed, existing)
            if table is not None:
                relation = f"{duck.LAKE_ALIAS}.{duck.CURATED_SCHEMA}.{table}"
                for sha, n, run in con.execute(
                    f"select _source_sha256, count(*), any_value(_run_id) from {relation} "
                    "where batch_id = ? group by 1",
                    [batch_id],
                ).fetchall():
                    if sha in files:
                        files[sha]["rows_current"] = n
                    build_runs.add(run)
                if feed.name == "mes__batches":
                    found = con.execute(f"select disposition_at from {relation} where batch_id = ?", [batch_id])
                    disposition_at = (found.fetchone() or [None])[0]
            corrections += _corrections(con, feed, landing, batch_id, table and f"{duck.LAKE_ALIAS}.curated.{table}")
    deliveries = _deliveries(res, list(files))
    quarantined = [
        f for f in control.file_outcomes(res.control) if f["outcome"] == "quarantined" and batch_id in f["file"]
    ]
    if not files and not quarantined:
        raise AuditError(f"no file on record has rows of batch {batch_id!r}")
    late, redelivered = [], []
    disposition = control.iso(disposition_at)
    for entry in files.values():
        entry["deliveries"] = deliveries.get(entry["sha256"], [])
        accepted = [d for d in entry["deliveries"] if d["outcome"] == "accepted"]
        entry["outcome"] = (
            "accepted" if accepted else (entry["deliveries"][0]["outcome"] if entry["deliveries"] else None)
        )
        entry["rows_superseded"] = entry["rows_landed"] - entry["rows_current"]
        for d in entry["deliveries"]:
            if d["outcome"] == "duplicate":
                redelivered.append({"file": d["file"], "sha256": entry["sha256"], "received_at": d["received_at"]})
            if disposition and d["received_at"] > disposition:  # both ISO 8601 UTC with Z: ordered as text
                late.append({"file": d["file"], "sha256": entry["sha256"], "received_at": d["received_at"]})
    run_ids = {e["ingest_run_id"] for e in files.values()} | build_runs
    run_ids |= {d["run_id"] for e in files.values() for d in e["deliveries"]}
    run_ids |= {d["validated_by"] for e in files.values() for d in e["deliveries"] if d["validated_by"]}
    runs = [r for r in ledger.runs(res.control, limit=1_000_000) if r["run_id"] in run_ids]
    return {
        "batch_id": batch_id,
        "disposition_at": disposition,
        "files": sorted(files.values(), key=lambda f: (f["feed"], f["ingested_at"] or "", f["file"])),
        "quarantined": [
            {
                "file": q["file"],
                "sha256": q["sha256"],
                "received_at": _iso(q["received_at"]),
                "reason": q["reason"],
            }
            for q in quarantined
        ],
        "corrections": corrections,
        "flags": dict(sorted(flags.items())),
        "rejects": dict(sorted(rejects.items())),
        "late": late,
        "redelivered": redelivered,
        "runs": [
            {k: r[k] for k in ("run_id", "status", "trigger", "who", "started_at", "ended_at", "error")} for r in runs
        ],
    }


def _corrections(con: Any, feed: Feed, landing: str, batch_id: str, curated: str | None) -> list[dict[str, Any]]:
    """Keys of the batch with more than one delivered version: every version, oldest first, and the current one."""
    key = ", ".join(feed.key)
    rows = con.execute(
        f"select {key}, list({{'file': _source_file, 'sha256': _source_sha256, 'row': _source_row, "
        f"'ingested_at': _ingested_at}} order by _ingested_at, _source_file, _source_row) "
        f"from {landing} where batch_id = ? group by all having count(*) > 1 order by all limit 1000",
        [batch_id],
    ).fetchall()
    out = []
    for *values, versions in rows:
        current = None
        if curated:
            where = " and ".join(f"{k} is not distinct from ?" for k in feed.key)
            found = con.execute(f"select _source_sha256, _source_row from {curated} where {where}", values).fetchone()
            current = {"sha256": found[0], "row": found[1]} if found else None
        out.append(
            {
                "feed": feed.name,
                "key": dict(zip(feed.key, [str(v) for v in values], strict=True)),
                "versions": [{**v, "ingested_at": control.iso(v["ingested_at"])} for v in versions],
                "current": current,
            }
        )
    return out


def _iso(value: Any) -> str | None:
    """ISO 8601 UTC with Z, whether the control DB handed back a datetime or text."""
    from datetime import datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return control.iso(value)


def _deliveries(res: Resources, shas: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per SHA-256, every manifest row with it (oldest first) and its current outcome and deciding run."""
    wanted = set(shas)
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in control.file_outcomes(res.control):
        if f["sha256"] in wanted:
            out[f["sha256"]].append(
                {
                    "file": f["file"],
                    "path": f["path"],
                    "received_at": _iso(f["received_at"]),
                    "run_id": f["run_id"],
                    "outcome": f["outcome"],
                    "reason": f["reason"],
                    "validated_by": f["validated_run_id"],
                }
            )
    return out
