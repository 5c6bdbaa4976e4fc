"""The resources of a run, built once from the settings and passed down to every stage.

A run talks to the raw zone, quarantine and lake stores (local directories or one S3 client), the control
database (ingest manifest, file outcomes, run ledger), DuckDB, and the lineage transport. Before this object each
layer rebuilt them from the settings: an S3 client per landed chunk and per validated file, a control engine
lookup per call. ``Resources(settings)`` builds each on first use and keeps it; ``runner.run`` builds one per run
(or takes the caller's), the stages receive it, and the Dagster resource wraps one for the life of the code
server. ``Resources.of(x)`` accepts settings too, so library calls from tests and scripts keep working.

Nothing here opens a DuckDB *file* for longer than a caller asks: the embedded catalog and marts files take one
writer, and dbt opens its own connection during transform (see ``duckdb``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.settings import Settings

if TYPE_CHECKING:
    import duckdb
    from sqlalchemy.engine import Engine

    from pipelines import lineage, storage


class Resources:
    """Clients and stores of one settings object; each built on first use, then reused (thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()

    @classmethod
    def of(cls, obj: Settings | Resources) -> Resources:
        """``obj`` itself if it is a Resources, else new resources for these settings."""
        return obj if isinstance(obj, Resources) else cls(obj)

    # --- object storage -------------------------------------------------------------------------------

    @cached_property
    def s3(self) -> Any:
        """The one boto3 S3 client (boto3 clients are thread-safe); only built when a backend is S3."""
        from pipelines import storage

        with self._lock:
            return storage.s3_client(self.settings)

    @cached_property
    def raw(self) -> storage.Store:
        from pipelines import storage

        s = self.settings
        if s.raw_backend == "s3":
            return storage.S3Store(self.s3, s.raw_bucket)
        return storage.LocalStore(Path(s.raw_dir), read_only_objects=True)

    @cached_property
    def quarantine(self) -> storage.Store:
        from pipelines import storage

        s = self.settings
        if s.raw_backend == "s3":
            return storage.S3Store(self.s3, s.quarantine_bucket)
        return storage.LocalStore(Path(s.home) / "quarantine", read_only_objects=True)

    @cached_property
    def lake(self) -> storage.Store:
        from pipelines import storage

        s = self.settings
        if s.lake_backend == "s3":
            return storage.S3Store(self.s3, s.lake_bucket)
        return storage.LocalStore(Path(s.lake_dir), read_only_objects=False)

    # --- control database (manifest, outcomes, ledger) ------------------------------------------------

    @cached_property
    def control(self) -> Engine:
        """The control database's engine with every table of the manifest, outcomes and ledger in place."""
        from pipelines import control, ledger

        with self._lock:
            engine = control.engine(self.settings)
            ledger.ensure_schema(engine)
            return engine

    # --- lineage --------------------------------------------------------------------------------------

    @cached_property
    def lineage_transport(self) -> Any:
        from pipelines import lineage

        return lineage.transport_for(self.settings)

    def lineage(self) -> lineage.Lineage:
        """A lineage emitter for one run (its own event counts) over the shared transport."""
        from pipelines import lineage

        return lineage.Lineage(self.settings, transport=self.lineage_transport)

    # --- DuckDB ---------------------------------------------------------------------------------------

    @contextmanager
    def duckdb(self, **kw: Any) -> Iterator[duckdb.DuckDBPyConnection]:
        """A configured DuckDB connection (``pipelines.duck.connect`` arguments) for one block of work.

        Not kept between blocks: the embedded catalog and marts files take one writing process at a time and
        dbt opens them itself during transform, so a connection held by the run would lock dbt out.
        """
        from pipelines import duck

        conn = duck.connect(self.settings, **kw)
        try:
            yield conn
        finally:
            conn.close()
