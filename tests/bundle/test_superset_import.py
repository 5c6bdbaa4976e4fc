"""The dashboards import tool against the bundle's real Superset 6.1 and a real PostgreSQL that demands a password.

The marts password given in DASHBOARDS_MARTS_PASSWORD_FILE must be what Superset stores and connects with (it was
once dropped: Superset's importer takes the password from the URI, and a URI without one erased it), a re-import
must report no change, and a password in the URI as well as in the file is refused.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.bundle.conftest import REPO
from tests.fixtures.postgres import PG_BIN, running_postgres

pytestmark = [pytest.mark.bundle, pytest.mark.postgres]
BI_ROLE = "dash_bi"

# Run inside the Superset venv: connect with the stored "CGT marts" database object, as a chart would.
CONNECT = """
from superset.app import create_app
app = create_app()
with app.app_context():
    from sqlalchemy import text
    from superset.extensions import db
    from superset.models.core import Database
    database = db.session.query(Database).filter_by(database_name="CGT marts").one()
    with database.get_sqla_engine() as engine, engine.connect() as conn:
        print(conn.execute(text("select current_user")).scalar())
"""


@pytest.mark.timeout(1800)  # a venv of ~300 wheels, db upgrade, three imports: minutes on a loaded machine
def test_marts_password_from_the_file_is_stored_and_used(superset_python: Path, tmp_path: Path):
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 binaries not found in {PG_BIN}")
    config = tmp_path / "superset_config.py"
    config.write_text(
        f"SECRET_KEY = {secrets.token_urlsafe(32)!r}\n"
        f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{tmp_path}/superset.db'\n"
        "SUPERSET_LOAD_EXAMPLES = False\n"
    )
    env = {**os.environ, "SUPERSET_CONFIG_PATH": str(config), "FLASK_APP": "superset.app:create_app()"}
    superset = str(superset_python.parent / "superset")
    subprocess.run([superset, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([superset, "init"], env=env, check=True, capture_output=True)

    with running_postgres() as pg:
        pg.create_database("marts")
        password = secrets.token_urlsafe(16)
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {BI_ROLE} LOGIN PASSWORD '{password}'")
            hba = conn.execute("SHOW hba_file").fetchone()[0]
            # The throwaway cluster trusts loopback; the BI account must prove its password, as in production.
            Path(hba).write_text(f"host all {BI_ROLE} 127.0.0.1/32 scram-sha-256\n" + Path(hba).read_text())
            conn.execute("SELECT pg_reload_conf()")
        pw_file = tmp_path / "marts-password"
        pw_file.write_text(password + "\n")
        env |= {
            "DASHBOARDS_MARTS_URI": f"postgresql+psycopg2://{BI_ROLE}@{pg.host}:{pg.port}/marts",
            "DASHBOARDS_MARTS_PASSWORD_FILE": str(pw_file),
        }

        def run_import() -> dict:
            done = subprocess.run(
                [str(superset_python), str(REPO / "dashboards" / "superset_import.py")],
                env=env,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, done.stderr[-2000:]
            return json.loads(done.stdout.strip().splitlines()[-1])

        def connect() -> subprocess.CompletedProcess:
            return subprocess.run([str(superset_python), "-c", CONNECT], env=env, capture_output=True, text=True)

        assert run_import()["changed"] is True
        used = connect()
        assert used.returncode == 0 and used.stdout.strip().splitlines()[-1] == BI_ROLE, used.stderr[-1500:]
        assert run_import()["changed"] is False

        # A password in the URI as well as in the file is refused: one line, exit 1.
        env["DASHBOARDS_MARTS_URI"] = f"postgresql+psycopg2://{BI_ROLE}:x@{pg.host}:{pg.port}/marts"
        both = subprocess.run(
            [str(superset_python), str(REPO / "dashboards" / "superset_import.py")],
            env=env,
            capture_output=True,
            text=True,
        )
        assert both.returncode == 1 and "give it once" in both.stderr
        assert len(both.stderr.strip().splitlines()) == 1
