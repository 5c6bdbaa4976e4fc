"""The run ledger: an append-only record of every pipeline run, in the control database.

Each run writes two rows: ``started`` when it begins (so a crashed run still leaves a trace) and ``succeeded`` or
``failed`` when it ends (``abandoned``, written by a later run, when the process that started it died first:
:func:`close_abandoned`), carrying the inputs with their SHA-256, the outputs with row counts and the validation
verdicts. Rows are never updated or deleted: database triggers refuse UPDATE, DELETE (and TRUNCATE on
PostgreSQL), and every row carries ``row_hash`` = SHA-256 over its content and the previous row's hash, so
:func:`verify` detects a row altered or removed even by someone who bypassed the triggers.

The control database is the one ``pipelines.control.engine(settings)`` opens (SQLite by default, PostgreSQL
when ``LAKEHOUSE_CONTROL_DB_URL`` points there); the ledger only adds its own table.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

TABLE = "run_ledger"
GENESIS = "0" * 64  # prev_hash of the first row

metadata_obj = sa.MetaData()
run_ledger = sa.Table(
    TABLE,
    metadata_obj,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("event", sa.String(16), nullable=False),  # started | succeeded | failed | abandoned
    sa.Column("trigger", sa.String(128), nullable=False),
    sa.Column("who", sa.String(256), nullable=False),
    sa.Column("started_at", sa.String(40), nullable=False),  # ISO-8601 UTC, exactly as hashed
    sa.Column("ended_at", sa.String(40)),
    sa.Column("package_version", sa.String(64), nullable=False),
    sa.Column("git_commit", sa.String(64), nullable=False),
    sa.Column("stages", sa.String(256), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),  # canonical JSON: inputs, outputs, verdicts, error
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("row_hash", sa.String(64), nullable=False, unique=True),
    # Server clock, independent of the writer's: when the row really reached the database.
    sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
)


class LedgerError(RuntimeError):
    """The ledger could not be written or read (one-line message)."""


@dataclass
class LedgerEntry:
    """What one ledger row says about a run."""

    run_id: str
    trigger: str
    who: str
    started_at: datetime
    stages: tuple[str, ...]
    package_version: str
    git_commit: str
    ended_at: datetime | None = None
    event: Literal["started", "succeeded", "failed", "abandoned"] = "started"
    inputs: list[dict[str, Any]] = field(default_factory=list)  # {"uri", "sha256", "size"}
    outputs: list[dict[str, Any]] = field(default_factory=list)  # {"dataset", "rows"}
    verdicts: list[dict[str, Any]] = field(default_factory=list)  # {"file", "sha256", "outcome", "reason"}
    error: str | None = None
    # What else the run decided or did, by topic: "ingest" (full re-hash), "transform" (its input state, or why
    # it was skipped), "maintenance" (snapshots expired, files deleted). Absent when empty.
    notes: dict[str, Any] = field(default_factory=dict)
    # The OS process that writes the run (host, boot id, pid, its start time): a later run can tell it died.
    process: dict[str, Any] = field(default_factory=lambda: this_process())

    def detail(self) -> dict[str, Any]:
        out = {"inputs": self.inputs, "outputs": self.outputs, "verdicts": self.verdicts, "error": self.error}
        if self.notes:
            out["notes"] = self.notes
        out["process"] = self.process
        return out


def ensure_schema(engine: Engine) -> None:
    """Create the ledger table and its append-only triggers if missing (idempotent)."""
    from pipelines.control import append_only_ddl, schema_transaction  # shared with the control tables

    with schema_transaction(engine) as conn:  # safe when processes open a new database at once (ADR 0164)
        metadata_obj.create_all(conn, checkfirst=True)
        for stmt in append_only_ddl(engine.dialect.name, TABLE):
            conn.exec_driver_sql(stmt)


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        raise ValueError("ledger timestamps must be timezone-aware (UTC)")
    return ts.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _hash_row(row: dict[str, Any]) -> str:
    hashed = {k: row[k] for k in row if k not in ("seq", "row_hash", "recorded_at")}
    return hashlib.sha256(_canonical(hashed).encode()).hexdigest()


def _row(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "run_id": entry.run_id,
        "event": entry.event,
        "trigger": entry.trigger,
        "who": entry.who,
        "started_at": _iso(entry.started_at),
        "ended_at": _iso(entry.ended_at),
        "package_version": entry.package_version,
        "git_commit": entry.git_commit,
        "stages": ",".join(entry.stages),
        "detail": _canonical(entry.detail()),
    }


def _insert(conn: sa.Connection, row: dict[str, Any]) -> str:
    """Chain ``row`` to the newest row and insert it (inside a transaction holding the writers' lock)."""
    prev = conn.execute(sa.select(run_ledger.c.row_hash).order_by(run_ledger.c.seq.desc()).limit(1)).scalar()
    row["prev_hash"] = prev or GENESIS
    row["row_hash"] = _hash_row(row)
    conn.execute(run_ledger.insert().values(**row))
    return row["row_hash"]


def _lock(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        # Serialise writers so the hash chain stays linear (readers are not blocked).
        conn.exec_driver_sql(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")


def append(engine: Engine, entry: LedgerEntry) -> str:
    """Append one row for ``entry``; returns its row hash."""
    row = _row(entry)
    try:
        with engine.begin() as conn:
            _lock(conn)
            return _insert(conn, row)
    except sa.exc.SQLAlchemyError as exc:
        raise LedgerError(f"cannot write the run ledger: {_first_line(exc)}") from exc


# --- runs whose process died -------------------------------------------------------------------------------------

# A run started on another host cannot be checked (its pid means nothing here): it is closed after this long.
# So is a run recorded before processes were (rows without ``process``).
FOREIGN_RUN_TIMEOUT = timedelta(hours=24)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22): tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def this_process() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot_id": _boot_id(), "pid": pid, "start": _process_start(pid)}


def _process_gone(process: dict[str, Any]) -> bool | None:
    """True: that process no longer runs; False: it does; None: cannot tell (another host)."""
    if process.get("host") != socket.gethostname():
        return None
    if process.get("boot_id") and process["boot_id"] != _boot_id():
        return True  # this host rebooted since
    pid = int(process.get("pid") or 0)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, another user's
    return bool(process.get("start")) and _process_start(pid) != process["start"]


def close_abandoned(engine: Engine, closer: str, now: datetime | None = None) -> list[str]:
    """Close every run part whose process died before writing its end row: append an ``abandoned`` row.

    Called at the start of every run (``closer`` is its id). A part is a ``started`` row and the end row written
    by the same process. Returns the run ids closed.
    """
    now = now or datetime.now(UTC)
    closed: list[str] = []
    try:
        with engine.begin() as conn:
            _lock(conn)
            result = conn.execute(sa.select(run_ledger).order_by(run_ledger.c.seq)).mappings().all()
            balance: dict[tuple[str, str], int] = {}
            first: dict[tuple[str, str], dict[str, Any]] = {}
            for r in result:
                process = json.loads(r["detail"]).get("process")
                key = (r["run_id"], _canonical(process))
                balance[key] = balance.get(key, 0) + (1 if r["event"] == "started" else -1)
                if r["event"] == "started":
                    first.setdefault(key, {**dict(r), "process": process})
            for key, open_parts in balance.items():
                if open_parts <= 0:
                    continue
                start = first[key]
                process = start["process"] or {}
                gone = _process_gone(process) if process else None
                age = now - datetime.fromisoformat(start["started_at"].replace("Z", "+00:00"))
                if gone is False or (gone is None and age < FOREIGN_RUN_TIMEOUT):
                    continue
                why = (
                    f"process {process.get('pid')} on {process.get('host')} ended without closing the run"
                    if gone
                    else f"no end row {age.total_seconds() / 3600:.0f} h after its start"
                )
                for _ in range(open_parts):
                    row = {k: start[k] for k in ("run_id", "trigger", "who", "started_at", "package_version")}
                    detail = {"inputs": [], "outputs": [], "verdicts": [], "process": start["process"]}
                    detail["error"] = f"abandoned: {why} (closed by run {closer})"
                    row |= {
                        "event": "abandoned",
                        "ended_at": _iso(now),
                        "git_commit": start["git_commit"],
                        "stages": start["stages"],
                        "detail": _canonical(detail),
                    }
                    _insert(conn, row)
                closed.append(start["run_id"])
    except sa.exc.SQLAlchemyError as exc:
        raise LedgerError(f"cannot write the run ledger: {_first_line(exc)}") from exc
    return closed


def rows(engine: Engine) -> list[dict[str, Any]]:
    """Every ledger row in order, ``detail`` decoded."""
    with engine.connect() as conn:
        result = conn.execute(sa.select(run_ledger).order_by(run_ledger.c.seq)).mappings().all()
    out = []
    for r in result:
        d = dict(r)
        d["detail"] = json.loads(d["detail"])
        out.append(d)
    return out


def last_note(engine: Engine, topic: str) -> tuple[str, dict[str, Any]] | None:
    """(run id, note) of the newest succeeded ledger row carrying a note on ``topic``, or None."""
    q = (
        sa.select(run_ledger.c.run_id, run_ledger.c.detail)
        .where(run_ledger.c.event == "succeeded", run_ledger.c.detail.like(f'%"{topic}":%'))
        .order_by(run_ledger.c.seq.desc())
        .limit(50)
    )
    with engine.connect() as conn:
        for run_id, detail in conn.execute(q):
            note = json.loads(detail).get("notes", {}).get(topic)
            if note is not None:
                return run_id, note
    return None


def runs(engine: Engine, limit: int = 10) -> list[dict[str, Any]]:
    """The last ``limit`` runs, newest first, each folded from its ledger rows.

    A run may write several start/end pairs under one run id (a Dagster run records each step it executes), so
    the status is ``failed`` if any part failed, ``abandoned`` if a part's process died (closed by a later run),
    ``running or crashed`` while a part has no end row, else ``succeeded``.
    """
    folded: dict[str, dict[str, Any]] = {}
    for r in rows(engine):
        run = folded.setdefault(
            r["run_id"],
            {
                "run_id": r["run_id"],
                "first_seq": r["seq"],
                "open": 0,
                "failed": False,
                "abandoned": False,
                "trigger": r["trigger"],
                "who": r["who"],
                "started_at": r["started_at"],
                "ended_at": None,
                "package_version": r["package_version"],
                "git_commit": r["git_commit"],
                "stages": [],
                "inputs": 0,
                "outputs": [],
                "errors": [],
            },
        )
        if r["event"] == "started":
            run["open"] += 1
            run["stages"] += [s for s in r["stages"].split(",") if s and s not in run["stages"]]
            continue
        run["open"] -= 1
        run["failed"] |= r["event"] == "failed"
        run["abandoned"] |= r["event"] == "abandoned"
        run["ended_at"] = max(filter(None, [run["ended_at"], r["ended_at"]]))
        run["inputs"] += len(r["detail"]["inputs"])
        run["outputs"] += r["detail"]["outputs"]
        if r["detail"]["error"]:
            run["errors"].append(r["detail"]["error"])
    ordered = sorted(folded.values(), key=lambda r: r["first_seq"], reverse=True)[:limit]
    for run in ordered:
        run["status"] = (
            "failed"
            if run["failed"]
            else "abandoned"
            if run["abandoned"]
            else "running or crashed"
            if run["open"] > 0
            else "succeeded"
        )
        run["error"] = "; ".join(run.pop("errors")) or None
        for internal in ("first_seq", "open", "failed", "abandoned"):
            run.pop(internal)
    return ordered


def verify(engine: Engine) -> list[str]:
    """Re-hash the whole ledger; returns one message per broken link (empty = intact)."""
    problems = []
    prev = GENESIS
    with engine.connect() as conn:
        result = conn.execute(sa.select(run_ledger).order_by(run_ledger.c.seq)).mappings().all()
    for r in result:
        row = dict(r)
        if row["prev_hash"] != prev:
            problems.append(f"row {row['seq']} (run {row['run_id']}): previous row missing or altered")
        if _hash_row(row) != row["row_hash"]:
            problems.append(f"row {row['seq']} (run {row['run_id']}): content does not match its hash")
        prev = row["row_hash"]
    return problems


def who() -> str:
    """The account that started the run, as user@host (no shared logins: the OS account is the identity)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def package_version() -> str:
    try:
        return metadata.version("cgt-lakehouse-pipelines")
    except metadata.PackageNotFoundError:
        return "unknown"


@lru_cache
def git_commit() -> str:
    """The git commit of the running code (``+dirty`` if tracked files differ), or the wheel's build stamp."""
    here = Path(__file__).resolve().parent
    stamp = here / "_build_commit.txt"  # written into the wheel by the bundle build, where there is no .git
    if stamp.exists():
        return stamp.read_text().strip()
    try:
        head = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
