"""Named OS locks under HOME/locks: one holder at a time per host, released when the holder dies (flock).

Used by every path that writes the same state: ingest and validation of the landing files (``landing``: no two
ingests or validations of the same files interleave, whether the CLI, a schedule or the Dagster daemon started
them) and the DuckDB files (``duckdb-writer``, pipelines.runner). Across hosts the control database's constraints
stand behind them (a delivery is one manifest row: unique path + SHA-256).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.settings import Settings

WAIT_SECONDS = 30 * 60


class Busy(RuntimeError):
    """Another process held the lock for the whole wait (transient: worth retrying later)."""


@contextmanager
def hold(
    settings: Settings, name: str, wait_seconds: float = WAIT_SECONDS, busy: type[Exception] = Busy
) -> Iterator[None]:
    """Hold the lock ``name`` for the block, waiting up to ``wait_seconds``; else raise ``busy`` (one line)."""
    path = Path(settings.home) / "locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise busy(f"another run ({holder}) is writing {settings.home}; try again later") from None
                time.sleep(1)
        handle.truncate(0)
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
