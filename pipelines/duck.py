"""The one place that builds DuckDB connections.

Everything that talks to DuckDB — dbt (through the dbt-duckdb plugin in ``pipelines.transform.dbt_plugin``),
tests, status queries — configures its connection here, so the extensions, the S3 secret and the two attached
databases are the same everywhere:

* **Extensions** come from the installed ``duckdb-extension-*`` wheels, loaded by file path. Their packages hold
  ``extensions/v<duckdb version>/<name>.duckdb_extension``; DuckDB's own installer would fetch from
  extensions.duckdb.org, which GMP VMs cannot reach, so auto-install is switched off.
* **S3**: one secret built from the settings (endpoint, keys, region, TLS) when the lake is on S3.
* **DuckLake** (curated tables) is attached as ``lake``: catalog in a DuckDB file (default) or PostgreSQL,
  data files under ``<lake root>/ducklake/``. ``DATA_INLINING_ROW_LIMIT 0`` keeps every row in Parquet files
  instead of inlining small writes in the catalog.
* **Marts** are attached as ``marts``: a DuckDB file (default) or a PostgreSQL database (postgres extension).

Sessions run in UTC so TIMESTAMPTZ values render the same on every host.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import duckdb

from pipelines.settings import Settings

# Extension name -> Python package of its wheel (the postgres extension's file is named postgres_scanner).
EXTENSION_WHEELS: dict[str, str] = {
    "httpfs": "duckdb_extension_httpfs",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "ducklake": "duckdb_extension_ducklake",
    "sqlite_scanner": "duckdb_extension_sqlite_scanner",
}

LAKE_ALIAS = "lake"
MARTS_ALIAS = "marts"
CONTROL_ALIAS = "control"
CURATED_SCHEMA = "curated"


class DuckSetupError(RuntimeError):
    """A DuckDB connection could not be configured (missing extension wheel, unreachable attach target)."""


def extension_path(name: str) -> Path:
    """Path of the extension binary shipped in its wheel for the installed DuckDB version."""
    package = EXTENSION_WHEELS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DuckSetupError(f"DuckDB extension wheel {package.replace('_', '-')} is not installed")
    base = Path(next(iter(spec.submodule_search_locations)))
    path = base / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.is_file():
        raise DuckSetupError(f"{path} is missing: the extension wheel does not match duckdb {duckdb.__version__}")
    return path


def _first_line(exc: BaseException, settings: Settings) -> str:
    """First line of a DuckDB error with any DSN or password from the settings blanked out."""
    text = (str(exc).strip().splitlines() or [repr(exc)])[0]
    for secret in (settings.catalog_pg_dsn, settings.marts_pg_dsn, settings.s3_secret_access_key):
        if secret is not None and secret.get_secret_value():
            text = text.replace(secret.get_secret_value(), "<redacted>")
    return re.sub(r"password=\S+", "password=<redacted>", text)


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def lake_root(settings: Settings) -> str:
    """Root of the lake: ``s3://<bucket>`` or an absolute local directory (no trailing slash)."""
    if settings.lake_backend == "s3":
        return f"s3://{settings.lake_bucket}"
    return str(Path(settings.lake_dir).resolve())


def landing_location(settings: Settings, feed: str) -> str:
    """Directory (or S3 prefix) holding the validated landing Parquet of one feed."""
    return f"{lake_root(settings)}/landing/{feed}"


def curated_data_path(settings: Settings) -> str:
    """DuckLake DATA_PATH: where the curated tables' Parquet files live (trailing slash, as DuckLake wants).

    DuckLake writes ``DATA_PATH/<schema>/<table>/*.parquet``, so curated tables land in ``LAKE/ducklake/curated/``.
    """
    return f"{lake_root(settings)}/ducklake/"


@dataclass(frozen=True)
class Attachment:
    """What to ATTACH: ``path`` (may hold a DSN: treat as secret), ``options`` for the ATTACH clause."""

    alias: str
    path: str
    options: dict[str, str | int]

    def sql(self, *, read_only: bool = False) -> str:
        opts = [f"{k} {_sql_str(v) if isinstance(v, str) else v}" for k, v in self.options.items()]
        if read_only:
            opts.append("READ_ONLY")
        clause = f" ({', '.join(opts)})" if opts else ""
        return f"ATTACH IF NOT EXISTS {_sql_str(self.path)} AS {self.alias}{clause}"


def lake_attachment(settings: Settings) -> Attachment:
    if settings.catalog_backend == "postgres":
        catalog = "postgres:" + settings.catalog_pg_dsn.get_secret_value()
    else:
        catalog = str(Path(settings.catalog_path).resolve())
    return Attachment(
        LAKE_ALIAS,
        f"ducklake:{catalog}",
        {"DATA_PATH": curated_data_path(settings), "DATA_INLINING_ROW_LIMIT": 0},
    )


def marts_attachment(settings: Settings) -> Attachment:
    if settings.marts_backend == "postgres":
        return Attachment(MARTS_ALIAS, settings.marts_pg_dsn.get_secret_value(), {"TYPE": "postgres"})
    return Attachment(MARTS_ALIAS, str(Path(settings.marts_path).resolve()), {"TYPE": "duckdb"})


def control_attachment(settings: Settings) -> Attachment:
    """The control database (ingest manifest, file outcomes, run ledger), read-only: SQLite file or PostgreSQL.

    The data-integrity marts read it; ``schema`` of the attached tables is ``main`` (SQLite) or ``public``."""
    import sqlalchemy as sa

    url = sa.engine.make_url(settings.control_db_url.get_secret_value())
    if url.get_backend_name() == "sqlite":
        return Attachment(CONTROL_ALIAS, str(Path(url.database).resolve()), {"TYPE": "sqlite"})
    parts = {
        "host": url.host,
        "port": url.port,
        "dbname": url.database,
        "user": url.username,
        "password": url.password,
        **{k: v for k, v in url.query.items() if isinstance(v, str)},
    }
    dsn = " ".join(f"{k}={_libpq_value(str(v))}" for k, v in parts.items() if v is not None)
    return Attachment(CONTROL_ALIAS, dsn, {"TYPE": "postgres"})


def control_schema(settings: Settings) -> str:
    return "main" if control_attachment(settings).options["TYPE"] == "sqlite" else "public"


def _libpq_value(value: str) -> str:
    if value and not any(c in value for c in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def load_extensions(conn: duckdb.DuckDBPyConnection) -> None:
    """Load httpfs, postgres, ducklake and sqlite from their wheels (never from the network)."""
    conn.execute("SET autoinstall_known_extensions = false")
    for name in EXTENSION_WHEELS:
        conn.execute(f"LOAD {_sql_str(str(extension_path(name)))}")


def create_s3_secret(conn: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """The S3 secret DuckDB's httpfs uses for the lake bucket (path-style URLs, as MinIO serves them)."""
    if settings.lake_backend != "s3":
        return
    endpoint = urlparse(settings.s3_endpoint_url)
    parts = {
        "TYPE": "s3",
        "KEY_ID": settings.s3_access_key_id,
        "SECRET": settings.s3_secret_access_key.get_secret_value(),
        "REGION": settings.s3_region,
        "ENDPOINT": endpoint.netloc,
        "URL_STYLE": "path",
        "USE_SSL": endpoint.scheme == "https",
        "SCOPE": f"s3://{settings.lake_bucket}",
    }
    body = ", ".join(f"{k} {v if isinstance(v, bool) else _sql_str(v)}" for k, v in parts.items())
    conn.execute(f"CREATE OR REPLACE SECRET lakehouse_s3 ({body})")
    if settings.s3_ca_bundle:
        # httpfs verifies TLS with the CA file curl would use.
        conn.execute(f"SET ca_cert_file = {_sql_str(str(settings.s3_ca_bundle))}")


def configure(conn: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Session setup shared by every connection: UTC, extensions from wheels, S3 secret."""
    conn.execute("SET TimeZone = 'UTC'")
    load_extensions(conn)
    create_s3_secret(conn, settings)


def connect(
    settings: Settings,
    *,
    database: str | Path = ":memory:",
    lake: bool = True,
    marts: bool = True,
    read_only: bool = False,
) -> duckdb.DuckDBPyConnection:
    """A configured DuckDB connection with the lake (``lake``) and marts (``marts``) attached as asked.

    ``read_only`` attaches both read-only (readers such as status queries and tests); the embedded DuckDB-file
    catalog and marts file are single-writer, so readers should not hold them while a build runs.
    """
    try:
        conn = duckdb.connect(str(database), read_only=read_only and str(database) != ":memory:")
    except duckdb.Error as exc:
        raise DuckSetupError(f"DuckDB could not open {database}: {_first_line(exc, settings)}") from None
    try:
        configure(conn, settings)
        if lake:
            if settings.catalog_backend == "duckdb":
                Path(settings.catalog_path).parent.mkdir(parents=True, exist_ok=True)
            if settings.lake_backend == "local":
                Path(curated_data_path(settings)).mkdir(parents=True, exist_ok=True)
            conn.execute(lake_attachment(settings).sql(read_only=read_only))
        if marts:
            if settings.marts_backend == "duckdb":
                Path(settings.marts_path).parent.mkdir(parents=True, exist_ok=True)
            conn.execute(marts_attachment(settings).sql(read_only=read_only))
    except duckdb.Error as exc:
        conn.close()
        raise DuckSetupError(f"DuckDB setup failed: {_first_line(exc, settings)}") from None
    return conn
