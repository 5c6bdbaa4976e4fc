"""The control database: ingest manifest and file outcomes (and, added by pipelines.ledger, the run ledger).

SQLite file ``HOME/control.sqlite`` by default; PostgreSQL when ``LAKEHOUSE_CONTROL_DB_URL`` is
``postgresql+psycopg://...``. Both tables are append-only, enforced by database triggers on both backends
(UPDATE and DELETE refused; TRUNCATE too on PostgreSQL):

* ``ingest_manifest`` — one row per landed file: source system, feed, instrument, original name and path,
  received_at (UTC), sha256, size, raw-zone URI, run id.
* ``file_outcomes`` — the verdict for a manifest row: ``accepted``, ``quarantined`` (+ reason) or ``duplicate``,
  with row counts and where the results went. A later verdict for the same manifest row (re-validation) is a new
  row; the newest one counts. A manifest row without an outcome is *pending* validation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipelines.settings import Settings

OUTCOMES = ("accepted", "quarantined", "duplicate")

metadata_obj = sa.MetaData()

ingest_manifest = sa.Table(
    "ingest_manifest",
    metadata_obj,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),  # UTC, when ingest read the file
    sa.Column("source_system", sa.String(64), nullable=False),
    sa.Column("feed", sa.String(128)),  # NULL: no feed claims the file (quarantined as unknown_feed)
    sa.Column("instrument_id", sa.String(128)),
    sa.Column("original_name", sa.String(512), nullable=False),
    sa.Column("original_path", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("raw_key", sa.Text, nullable=False),
    sa.Column("raw_uri", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
)

file_outcomes_t = sa.Table(
    "file_outcomes",
    metadata_obj,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("manifest_seq", sa.Integer, sa.ForeignKey("ingest_manifest.seq"), nullable=False, index=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("reason_kind", sa.String(32)),  # quarantine reason kind, e.g. schema_drift
    sa.Column("reason", sa.Text),
    sa.Column("rows_accepted", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rows_flagged", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rows_rejected", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("suite", sa.String(128)),  # expectation suite name@version that judged the file
    sa.Column("landing_uri", sa.Text),
    sa.Column("rejected_uri", sa.Text),
    sa.Column("quarantine_uri", sa.Text),
    sa.Column("report_uri", sa.Text),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.CheckConstraint("outcome IN ('accepted', 'quarantined', 'duplicate')", name="file_outcomes_outcome"),
)

file_checks_t = sa.Table(
    "file_checks",
    metadata_obj,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("original_path", sa.Text, nullable=False, index=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("manifest_seq", sa.Integer, sa.ForeignKey("ingest_manifest.seq"), nullable=False),
    sa.Column("full_rehash", sa.Boolean, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("hashed_at", sa.DateTime(timezone=True), nullable=False),
)

APPEND_ONLY_TABLES = ("ingest_manifest", "file_outcomes", "file_checks")


class ControlError(RuntimeError):
    """The control database could not be read or written (one-line message)."""


def append_only_ddl(dialect: str, table: str) -> list[str]:
    """Trigger DDL that makes ``table`` append-only (UPDATE/DELETE refused; TRUNCATE too on PostgreSQL).

    Shared by every append-only table of the control database (manifest, outcomes, run ledger)."""
    if dialect == "postgresql":
        return [
            f"""CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION USING MESSAGE = '{table} is append-only: ' || TG_OP || ' denied'; END $$""",
            f"""CREATE OR REPLACE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION {table}_append_only()""",
            f"""CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()""",
        ]
    return [
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE denied'); END""",
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE denied'); END""",
    ]


_ENGINES: dict[str, Engine] = {}


def engine(settings: Settings) -> Engine:
    """The control database's engine (one per URL per process), with the manifest and outcome tables in place."""
    url = settings.control_db_url.get_secret_value()
    if url in _ENGINES:
        return _ENGINES[url]
    parsed = sa.engine.make_url(url)
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 60}
    else:
        kwargs["pool_pre_ping"] = True
    eng = sa.create_engine(url, **kwargs)
    if eng.dialect.name == "sqlite":

        @sa.event.listens_for(eng, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001 - DB-API connection
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # `lakehouse status` can read while a run writes
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    try:
        ensure_schema(eng)
    except sa.exc.SQLAlchemyError as exc:
        raise ControlError(f"cannot open the control database: {_first_line(exc)}") from exc
    _ENGINES[url] = eng
    return eng


@contextmanager
def schema_transaction(eng: Engine) -> Iterator[sa.Connection]:
    """A connection in one transaction that holds the database's schema lock, committed at the end of the block.

    Several processes may open a new control database at the same moment (a CLI run beside the Dagster daemon,
    two workers): "check whether the table exists, then create it" must not interleave, or the second creator
    fails with "table already exists". SQLite: ``BEGIN IMMEDIATE`` takes the write lock before the first check
    (the others wait up to the connection timeout, then see the tables); PostgreSQL: a transaction-scoped advisory
    lock, with the DDL in the same transaction (ADR 0164)."""
    with eng.connect() as conn:
        if eng.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # pysqlite would not BEGIN before DDL by itself
        elif eng.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('cgt-lakehouse control schema'))")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def ensure_schema(eng: Engine) -> None:
    """Create the tables and their append-only triggers if missing (idempotent; safe when processes race)."""
    with schema_transaction(eng) as conn:
        metadata_obj.create_all(conn, checkfirst=True)
        # One manifest row per delivery (path + bytes): behind ingest's check, for writers on different hosts.
        conn.exec_driver_sql(
            "CREATE UNIQUE INDEX IF NOT EXISTS ingest_manifest_one_delivery ON ingest_manifest (original_path, sha256)"
        )
        for table in APPEND_ONLY_TABLES:
            for stmt in append_only_ddl(eng.dialect.name, table):
                conn.exec_driver_sql(stmt)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _utc(ts: datetime | None) -> datetime | None:
    """Timestamps read back from SQLite are naive (stored as UTC): make them aware."""
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def iso(ts: datetime | None) -> str | None:
    ts = _utc(ts)
    return ts.isoformat(timespec="seconds").replace("+00:00", "Z") if ts else None


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- writes -----------------------------------------------------------------------------------------


def find_landing(conn: sa.Connection, *, sha256: str, original_path: str | None = None) -> dict[str, Any] | None:
    """The first manifest row with these bytes (and this source path, if given), or None."""
    q = sa.select(ingest_manifest).where(ingest_manifest.c.sha256 == sha256)
    if original_path is not None:
        q = q.where(ingest_manifest.c.original_path == original_path)
    row = conn.execute(q.order_by(ingest_manifest.c.seq).limit(1)).mappings().first()
    return dict(row) if row else None


def find_original(conn: sa.Connection, *, sha256: str, feed: str | None) -> dict[str, Any] | None:
    """The earliest delivery of these bytes to this feed that stands: accepted, or still waiting for validation.

    A file is a duplicate only of such a delivery (ADR 0162): bytes an earlier delivery had quarantined, or that
    were filed under another feed, are landed again and validated on their own."""
    m, o = ingest_manifest, file_outcomes_t
    same_feed = m.c.feed.is_(None) if feed is None else m.c.feed == feed
    rows = conn.execute(sa.select(m).where(m.c.sha256 == sha256, same_feed).order_by(m.c.seq)).mappings().all()
    for row in rows:
        newest = sa.select(o.c.outcome).where(o.c.manifest_seq == row["seq"]).order_by(o.c.seq.desc()).limit(1)
        if conn.execute(newest).scalar() in (None, "accepted"):
            return dict(row)
    return None


def add_manifest_row(conn: sa.Connection, row: dict[str, Any]) -> int:
    return int(conn.execute(ingest_manifest.insert().values(**row)).inserted_primary_key[0])


def add_checks(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(file_checks_t.insert(), rows)


def add_outcome(conn: sa.Connection, row: dict[str, Any]) -> int:
    if row["outcome"] not in OUTCOMES:
        raise ValueError(f"unknown outcome {row['outcome']!r}")
    return int(conn.execute(file_outcomes_t.insert().values(**row)).inserted_primary_key[0])


# --- reads ------------------------------------------------------------------------------------------


def _latest_outcomes() -> sa.Subquery:
    latest = (
        sa.select(file_outcomes_t.c.manifest_seq, sa.func.max(file_outcomes_t.c.seq).label("seq"))
        .group_by(file_outcomes_t.c.manifest_seq)
        .subquery()
    )
    return sa.select(file_outcomes_t).join(latest, file_outcomes_t.c.seq == latest.c.seq).subquery("latest_outcome")


def latest_checks(eng: Engine) -> dict[str, dict[str, Any]]:
    """Per landing path, its newest check (size, mtime_ns, sha256, manifest_seq): what ingest may skip."""
    c = file_checks_t
    newest = sa.select(sa.func.max(c.c.seq)).group_by(c.c.original_path)
    q = sa.select(c).where(c.c.seq.in_(newest))
    with eng.connect() as conn:
        return {r["original_path"]: dict(r) for r in conn.execute(q).mappings()}


def last_full_rehash(eng: Engine) -> datetime | None:
    """When the newest full re-hash of the landing files ran (None: never)."""
    c = file_checks_t
    with eng.connect() as conn:
        return _utc(conn.execute(sa.select(sa.func.max(c.c.hashed_at)).where(c.c.full_rehash)).scalar())


def max_accepted_seq(eng: Engine) -> int:
    """The newest ``accepted`` outcome's seq (0: none yet): grows whenever landing data is added."""
    o = file_outcomes_t
    with eng.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(o.c.seq)).where(o.c.outcome == "accepted")).scalar() or 0)


def accepted_feeds_since(eng: Engine, seq: int) -> set[str]:
    """Feeds with an ``accepted`` outcome newer than ``seq`` (their landing data changed since)."""
    o, m = file_outcomes_t, ingest_manifest
    q = (
        sa.select(m.c.feed)
        .distinct()
        .select_from(o.join(m, o.c.manifest_seq == m.c.seq))
        .where(o.c.outcome == "accepted", o.c.seq > seq, m.c.feed.is_not(None))
    )
    with eng.connect() as conn:
        return {r[0] for r in conn.execute(q)}


def pending(eng: Engine) -> list[dict[str, Any]]:
    """Manifest rows without an outcome (waiting for validation), oldest first."""
    done = sa.select(file_outcomes_t.c.manifest_seq)
    q = sa.select(ingest_manifest).where(ingest_manifest.c.seq.not_in(done)).order_by(ingest_manifest.c.seq)
    with eng.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def revalidation_targets(
    eng: Engine, *, sha256s: Sequence[str] = (), names: Sequence[str] = (), feeds: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Manifest rows matching any of the selectors whose current outcome is ``accepted`` or ``quarantined``, oldest
    first, each with ``previous_outcome``. Duplicates (decided by their original) and pending files are left out."""
    o, m = _latest_outcomes(), ingest_manifest
    match = sa.or_(m.c.sha256.in_(list(sha256s)), m.c.original_name.in_(list(names)), m.c.feed.in_(list(feeds)))
    q = (
        sa.select(m, o.c.outcome.label("previous_outcome"))
        .select_from(m.join(o, o.c.manifest_seq == m.c.seq))
        .where(match, o.c.outcome.in_(["accepted", "quarantined"]))
        .order_by(m.c.seq)
    )
    with eng.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def file_outcomes(eng: Engine) -> list[dict[str, Any]]:
    """Every landed file with its current outcome (None while pending) — what ``lakehouse status`` lists."""
    o = _latest_outcomes()
    m = ingest_manifest
    q = (
        sa.select(
            m.c.seq.label("manifest_seq"),
            m.c.original_name.label("file"),
            m.c.original_path.label("path"),
            m.c.source_system,
            m.c.feed,
            m.c.instrument_id,
            m.c.sha256,
            m.c.size_bytes.label("size"),
            m.c.received_at,
            m.c.run_id,
            m.c.raw_uri,
            o.c.outcome,
            o.c.reason_kind,
            o.c.reason,
            o.c.rows_accepted,
            o.c.rows_flagged,
            o.c.rows_rejected,
            o.c.suite,
            o.c.landing_uri,
            o.c.rejected_uri,
            o.c.quarantine_uri,
            o.c.report_uri,
            o.c.run_id.label("validated_run_id"),
            o.c.decided_at,
        )
        .select_from(m.outerjoin(o, o.c.manifest_seq == m.c.seq))
        .order_by(m.c.seq)
    )
    with eng.connect() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
    for r in rows:
        r["received_at"] = iso(r["received_at"])
        r["decided_at"] = iso(r["decided_at"])
    return rows


def outcome_counts(eng: Engine) -> dict[str, int]:
    """``{"landed": n, "accepted": n, "quarantined": n, "duplicate": n, "pending": n}`` over all landed files."""
    counts = {"landed": 0, "accepted": 0, "quarantined": 0, "duplicate": 0, "pending": 0}
    for f in file_outcomes(eng):
        counts["landed"] += 1
        counts[f["outcome"] or "pending"] += 1
    return counts
