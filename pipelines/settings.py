"""One settings object for the whole pipeline.

Every value comes from an environment variable with the prefix ``LAKEHOUSE_`` (for example
``LAKEHOUSE_RAW_BACKEND=s3``), optionally from an env file named by ``LAKEHOUSE_ENV_FILE`` (the same
``KEY=value`` format systemd's ``EnvironmentFile=`` reads, which is what the dagster role renders).
The defaults are the embedded quick start: local directories under ``.lakehouse/``, DuckDB files, lineage
as a JSONL file — no services needed. The README's settings table documents each field.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LAKEHOUSE_",
        env_file=os.environ.get("LAKEHOUSE_ENV_FILE"),
        extra="ignore",
    )

    # --- local state ------------------------------------------------------------------------------
    home: Path = Field(Path(".lakehouse"), description="Root for all embedded state (created on demand).")
    landing_dir: Path | None = Field(None, description="Where instrument/LIMS exports land. Default: HOME/landing.")
    landing_backend: Literal["local", "s3"] = Field(
        "local", description="Where exports land: a directory (LANDING_DIR) or a bucket/prefix on the S3 API."
    )
    landing_bucket: str = Field("landing", description="S3 bucket exports land in (landing_backend=s3).")
    landing_prefix: str = Field(
        "", description="Key prefix under which exports land in the landing bucket, e.g. 'site-a/' (empty: all)."
    )
    landing_settle_seconds: int = Field(
        10,
        ge=0,
        description="A file (object: its LastModified) in the landing location is taken only once unchanged this long"
        " (still being written otherwise), by every scan: sensor, schedule and CLI.",
    )

    # --- raw zone (immutable, content-addressed) ---------------------------------------------------
    raw_backend: Literal["local", "s3"] = Field("local", description="Raw zone storage: local directory or S3 API.")
    raw_dir: Path | None = Field(None, description="Local raw zone. Default: HOME/raw.")
    raw_bucket: str = Field("raw", description="S3 bucket of the raw zone (versioned, object-locked).")
    quarantine_bucket: str = Field("quarantine", description="S3 bucket for quarantined copies.")

    # --- lake (landing Parquet, curated DuckLake data files) ---------------------------------------
    lake_backend: Literal["local", "s3"] = Field("local", description="Lake storage: local directory or S3 API.")
    lake_dir: Path | None = Field(None, description="Local lake root. Default: HOME/lake.")
    lake_bucket: str = Field("lake", description="S3 bucket of the lake (landing Parquet + DuckLake data).")

    # --- S3 API (MinIO in production) --------------------------------------------------------------
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint, e.g. https://minio.example:9000.")
    s3_access_key_id: str | None = Field(None, description="S3 access key of the pipelines account.")
    s3_secret_access_key: SecretStr | None = Field(None, description="S3 secret key of the pipelines account.")
    s3_region: str = Field("us-east-1", description="S3 region name (MinIO ignores it).")
    s3_ca_bundle: Path | None = Field(None, description="CA bundle to verify the S3 endpoint's TLS certificate.")

    # --- DuckLake catalog (curated tables) ---------------------------------------------------------
    catalog_backend: Literal["duckdb", "postgres"] = Field("duckdb", description="DuckLake catalog database.")
    catalog_path: Path | None = Field(None, description="Embedded catalog file. Default: HOME/catalog.ducklake.")
    catalog_pg_dsn: SecretStr | None = Field(
        None,
        description="libpq DSN of the PostgreSQL catalog, e.g. 'host=db dbname=ducklake user=pipelines ...'.",
    )

    # --- marts (what Superset reads) ---------------------------------------------------------------
    marts_backend: Literal["duckdb", "postgres"] = Field("duckdb", description="Where marts are published.")
    marts_path: Path | None = Field(None, description="Embedded marts DuckDB file. Default: HOME/marts.duckdb.")
    marts_pg_dsn: SecretStr | None = Field(None, description="libpq DSN of the PostgreSQL marts database.")
    marts_schema: str = Field("marts", description="Schema the marts are published into.")
    serving_bi_role: str | None = Field(
        None,
        description="PostgreSQL role of the read-only BI account; the serving layer grants it SELECT on the marts.",
    )

    # --- control store: ingest manifest, file outcomes, run ledger (append-only) -------------------
    control_db_url: SecretStr | None = Field(
        None, description="SQLAlchemy URL of the control store. Default: sqlite:///HOME/control.sqlite."
    )

    # --- incremental runs and housekeeping ---------------------------------------------------------
    rehash_interval_days: int = Field(
        7,
        ge=0,
        description="Days between full re-hashes of the landing files (0: every run); between them a file whose "
        "path, size and mtime are unchanged is not read again.",
    )
    snapshot_retention_days: int = Field(
        30,
        ge=0,
        description="DuckLake time travel kept (days): older curated snapshots are expired and their unreferenced "
        "data files deleted by `lakehouse maintain` (the nightly job).",
    )

    # --- lineage -----------------------------------------------------------------------------------
    lineage_transport: Literal["file", "http", "none"] = Field("file", description="OpenLineage transport.")
    lineage_file: Path | None = Field(None, description="JSONL event file. Default: HOME/lineage/events.jsonl.")
    marquez_url: str | None = Field(None, description="Marquez/OpenLineage HTTP endpoint (transport=http).")
    marquez_api_key: SecretStr | None = Field(None, description="Bearer token for the lineage endpoint, if any.")
    lineage_http_timeout: float = Field(
        60.0, gt=0, description="Seconds one lineage POST may take (a large event takes a loaded Marquez ~10 s)."
    )
    lineage_http_retries: int = Field(
        5,
        ge=0,
        description="Retries (exponential backoff from 0.5 s) of one lineage POST before it waits in the spool.",
    )
    lineage_namespace: str = Field("cgt-lakehouse", description="OpenLineage job namespace.")

    # --- synthetic data ----------------------------------------------------------------------------
    seed: int = Field(20261123, description="Random seed of `lakehouse generate`.")
    scale: int = Field(50, description="Number of batches `lakehouse generate` creates.")
    fault_rate: float = Field(0.05, description="Share of files/rows `lakehouse generate` makes faulty.")

    @model_validator(mode="after")
    def _fill_defaults_and_check(self) -> Settings:
        home = self.home
        self.landing_dir = self.landing_dir or home / "landing"
        self.raw_dir = self.raw_dir or home / "raw"
        self.lake_dir = self.lake_dir or home / "lake"
        self.catalog_path = self.catalog_path or home / "catalog.ducklake"
        self.marts_path = self.marts_path or home / "marts.duckdb"
        self.lineage_file = self.lineage_file or home / "lineage" / "events.jsonl"
        if self.control_db_url is None:
            self.control_db_url = SecretStr(f"sqlite:///{(home / 'control.sqlite').as_posix()}")
        # Fail fast, with the setting's env name, when a chosen backend lacks what it needs.
        uses_s3 = "s3" in (self.raw_backend, self.lake_backend, self.landing_backend)
        needs = {
            "LAKEHOUSE_S3_ENDPOINT_URL": uses_s3 and not self.s3_endpoint_url,
            "LAKEHOUSE_S3_ACCESS_KEY_ID": uses_s3 and not self.s3_access_key_id,
            "LAKEHOUSE_S3_SECRET_ACCESS_KEY": uses_s3 and not self.s3_secret_access_key,
            "LAKEHOUSE_CATALOG_PG_DSN": self.catalog_backend == "postgres" and not self.catalog_pg_dsn,
            "LAKEHOUSE_MARTS_PG_DSN": self.marts_backend == "postgres" and not self.marts_pg_dsn,
            "LAKEHOUSE_MARQUEZ_URL": self.lineage_transport == "http" and not self.marquez_url,
        }
        missing = [name for name, is_missing in needs.items() if is_missing]
        if missing:
            raise ValueError(f"missing required setting(s) for the chosen backends: {', '.join(missing)}")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (read once). Tests build `Settings(...)` directly instead."""
    return Settings()
