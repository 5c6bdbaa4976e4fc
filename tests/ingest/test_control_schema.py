"""The control database's schema is created safely when several processes open a new one at the same moment."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines import control
from pipelines.settings import Settings

# Each process waits for the same wall-clock instant, then opens the control database the way every run does
# (manifest, outcomes, checks and the run ledger, with their triggers and the unique delivery index).
_OPEN = """
import sys, time
from pipelines.resources import Resources
from pipelines.settings import Settings
start = float(sys.argv[2])
while time.time() < start:
    pass
url = sys.argv[3] if len(sys.argv) > 3 else None
Resources(Settings(home=sys.argv[1], **({"control_db_url": url} if url else {}))).control
"""


def _start_together(home: Path, n: int, url: str | None = None) -> list[tuple[int, str]]:
    start = time.time() + 4.0  # after every interpreter has imported what it needs
    args = [url] if url else []
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN, str(home), repr(start), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(n)
    ]
    return [(p.wait(timeout=300), p.stderr.read().decode()) for p in procs]


def test_processes_creating_a_new_sqlite_control_db_at_once_all_succeed(tmp_path: Path) -> None:
    for attempt in range(2):  # two fresh databases: a race that needs the right interleaving gets two chances
        home = tmp_path / f"home-{attempt}"
        results = _start_together(home, 4)
        assert [rc for rc, _err in results] == [0] * 4, [err.strip().splitlines()[-1:] for _rc, err in results]
        eng = control.engine(Settings(home=home))
        with eng.connect() as conn:
            names = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")}
            triggers = conn.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE type='trigger'").scalar()
        assert {"ingest_manifest", "file_outcomes", "file_checks", "run_ledger"} <= names
        assert triggers == 2 * 4  # UPDATE and DELETE refused on each append-only table
        eng.dispose()


@pytest.mark.postgres
def test_processes_creating_a_new_postgres_control_db_at_once_all_succeed(postgres_server, tmp_path: Path) -> None:
    pg = postgres_server
    for attempt in range(2):
        name = f"control_race_{attempt}"
        pg.create_database(name)
        url = f"postgresql+psycopg://{pg.superuser}@{pg.host}:{pg.port}/{name}"
        results = _start_together(tmp_path / name, 4, url)
        assert [rc for rc, _err in results] == [0] * 4, [err.strip().splitlines()[-1:] for _rc, err in results]
        eng = sa.create_engine(url)
        with eng.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
        eng.dispose()
        assert {"ingest_manifest", "file_outcomes", "file_checks", "run_ledger"} <= names


def test_schema_creation_holds_the_database_lock(tmp_path: Path) -> None:
    """While one connection creates the schema, another writer waits for it instead of racing it."""
    eng = sa.create_engine(f"sqlite:///{tmp_path / 'c.sqlite'}", connect_args={"timeout": 0.2})
    with control.schema_transaction(eng) as conn:
        conn.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
        other = sa.create_engine(f"sqlite:///{tmp_path / 'c.sqlite'}", connect_args={"timeout": 0.2})
        try:
            with other.connect() as c2:
                c2.exec_driver_sql("BEGIN IMMEDIATE")
            raise AssertionError("a second writer got the lock during schema creation")
        except sa.exc.OperationalError as exc:
            assert "locked" in str(exc)
        finally:
            other.dispose()
