"""Write-audit-publish for the transform (ADR 0160).

* **Marts** are written by dbt into the audit schema ``<marts schema>_audit`` of the marts database and tested
  there. Only when the whole build passed does ``publish_marts`` copy the marts this run built into the live
  schema (the one Superset, the serving layer and the BI account read), all in one transaction: readers see the
  previous marts or the new ones, never a mix and never a mart whose tests failed.
* **Curated** DuckLake tables are written in place, but only pipeline runs read them and every run holds the
  DuckDB writer lock for its whole transform (pipelines.runner). ``lake_snapshot`` notes the catalog's snapshot
  before the build; if the build fails, ``restore_curated`` puts every curated table the build changed back to
  that snapshot in one DuckLake transaction, before the lock is released. The failed version stays in the
  DuckLake history (time travel) as evidence of what was built and rejected.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipelines import duck
from pipelines.resources import Resources
from pipelines.settings import Settings
from pipelines.transform.project import audit_schema


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- curated: snapshot before, restore on failure ----------------------------------------------------------------


def lake_snapshot(res: Resources) -> int | None:
    """The DuckLake catalog's newest snapshot id before a build (None: no catalog yet)."""
    with res.duckdb(marts=False) as con:
        return con.execute(f"select max(snapshot_id) from {duck.LAKE_ALIAS}.snapshots()").fetchone()[0]


def restore_curated(res: Resources, snapshot: int | None, tables: Iterable[str]) -> list[str]:
    """Put ``tables`` (curated table names) back as they were at ``snapshot``, in one DuckLake transaction.

    A table that did not exist then is dropped. Returns the tables restored or dropped."""
    tables = sorted(set(tables))
    if not tables:
        return []
    schema = f"{duck.LAKE_ALIAS}.{duck.CURATED_SCHEMA}"
    done = []
    with res.duckdb(marts=False) as con:
        existed = {n for n in tables if snapshot is not None and _existed_at(con, schema, n, snapshot)}
        con.execute("begin")
        try:
            for name in tables:
                if name in existed:
                    con.execute(
                        f"create or replace table {schema}.{_ident(name)} as "
                        f"from {schema}.{_ident(name)} at (version => {int(snapshot)})"
                    )
                else:
                    con.execute(f"drop table if exists {schema}.{_ident(name)}")
                done.append(name)
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    return done


def _existed_at(con: Any, schema: str, name: str, snapshot: int) -> bool:
    import duckdb

    try:
        con.execute(f"select 1 from {schema}.{_ident(name)} at (version => {int(snapshot)}) limit 0")
    except duckdb.Error:
        return False
    return True


# --- marts: publish from the audit schema ------------------------------------------------------------------------


def publish_marts(settings: Settings, tables: Iterable[str]) -> list[str]:
    """Copy ``tables`` from the audit schema to the live marts schema in one transaction; returns them.

    A live table with the same columns keeps its identity (rows replaced: indexes, grants and dependent views
    stay); otherwise it is re-created (PostgreSQL: CASCADE; the serving layer re-creates its views and grants
    right after publication)."""
    tables = sorted(set(tables))
    if not tables:
        return []
    if settings.marts_backend == "postgres":
        import psycopg

        with psycopg.connect(settings.marts_pg_dsn.get_secret_value()) as conn, conn.transaction():
            _copy_tables(conn, settings, tables, catalog="", cascade=" cascade")
    else:
        import duckdb

        conn = duckdb.connect(str(settings.marts_path))
        try:
            conn.execute("begin")
            try:
                # The file's catalog name may equal the schema's (marts.duckdb -> "marts"): qualify fully.
                catalog = conn.execute("select current_database()").fetchone()[0]
                _copy_tables(conn, settings, tables, catalog=f"{_ident(catalog)}.", cascade="")
                conn.execute("commit")
            except Exception:
                conn.execute("rollback")
                raise
        finally:
            conn.close()
    return tables


def _columns(conn: Any, schema: str, table: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        "select column_name, data_type from information_schema.columns "
        f"where table_schema = '{schema}' and table_name = '{table}' order by ordinal_position"
    ).fetchall()
    return [(str(a), str(b)) for a, b in rows]


def _copy_tables(conn: Any, settings: Settings, tables: list[str], catalog: str, cascade: str) -> None:
    live, audit = settings.marts_schema, audit_schema(settings)
    conn.execute(f"create schema if not exists {catalog}{_ident(live)}")
    for name in tables:
        src, dst = f"{catalog}{_ident(audit)}.{_ident(name)}", f"{catalog}{_ident(live)}.{_ident(name)}"
        source_columns = _columns(conn, audit, name)
        if not source_columns:
            raise RuntimeError(f"cannot publish {name}: {audit}.{name} does not exist")
        if _columns(conn, live, name) == source_columns:
            conn.execute(f"delete from {dst}")
            conn.execute(f"insert into {dst} select * from {src}")
        else:
            conn.execute(f"drop table if exists {dst}{cascade}")
            conn.execute(f"create table {dst} as select * from {src}")
