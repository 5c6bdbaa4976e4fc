"""Measure the generator: `uv run python -m pipelines.generate [--scale N] [--seed S] [--fault-rate R] [--out DIR]`.

Prints wall time per phase, files, bytes and rows; docs/data.md records the figures. (The user-facing command
is `lakehouse generate`; this entry point exists to measure.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from ..settings import Settings
from . import generate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipelines.generate", description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=int, default=50)
    p.add_argument("--seed", type=int, default=20261123)
    p.add_argument("--fault-rate", type=float, default=0.05)
    p.add_argument("--out", type=Path, default=None, help="landing dir (default: a temporary directory)")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        out = a.out or Path(tmp) / "landing"
        try:
            r = generate(Settings(home=home), out, a.scale, a.seed, a.fault_rate)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"scale={r.scale} seed={r.seed} fault_rate={r.fault_rate}")
        print(f"files={len(r.files)} bytes={r.bytes_written} bioreactor_readings={r.bioreactor_readings}")
        for feed, n in r.rows_by_feed.items():
            print(f"  rows {feed:28s} {n}")
        print(f"batches {r.batches_by_disposition}")
        print(f"faults {r.faults_by_kind}")
        print("seconds " + " ".join(f"{k}={v}" for k, v in r.seconds.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
