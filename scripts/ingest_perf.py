"""Measure ingest + validation of a generated landing directory: `uv run python scripts/ingest_perf.py [--scale N]`.

Prints wall and CPU seconds per stage (GE import/context, land, validate) and rows per second; docs/ingest.md
records the figures. Everything runs in a temporary home, nothing else is touched.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from pipelines.generate import generate
from pipelines.ingest import land
from pipelines.settings import Settings
from pipelines.validate import expectations, validate_pending


def _timed(label: str, fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    print(f"{label:<22} wall {time.perf_counter() - w:6.2f} s   cpu {time.process_time() - c:6.2f} s")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=int, default=50)
    p.add_argument("--seed", type=int, default=20261123)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home", landing_dir=Path(tmp) / "landing")
        generate(settings, settings.landing_dir, a.scale, a.seed, 0.05)
        n_bytes = sum(f.stat().st_size for f in settings.landing_dir.rglob("*") if f.is_file())
        print(
            f"scale {a.scale}: {sum(1 for f in settings.landing_dir.rglob('*') if f.is_file())} files, "
            f"{n_bytes / 1e6:.1f} MB; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
        )
        _timed("GE import + context", expectations._batch_definition)
        landed = _timed("land", lambda: land(settings, [settings.landing_dir], "perf"))
        verdicts = _timed("validate", lambda: validate_pending(settings, "perf"))
        rows = sum(v.rows_accepted for v in verdicts)
        outcomes = {o: sum(1 for v in verdicts if v.outcome == o) for o in ("accepted", "quarantined")}
        dup = sum(1 for f in landed if f.outcome == "duplicate")
        print(f"files: {outcomes}, duplicate {dup}; landing rows {rows}")


if __name__ == "__main__":
    main()
