"""Measure the pipeline's stage timings at several scales; prints medians (docs/performance.md records them).

    uv run python scripts/perf_pipeline.py --scales 50 500 --repeat 3

Each repetition starts from an empty LAKEHOUSE_HOME in a temporary directory (embedded defaults), generates the
data set at the scale, then runs every stage once through ``pipelines.runner.run`` — what ``lakehouse demo`` does.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from pipelines import runner
from pipelines.generate import generate
from pipelines.settings import Settings

STAGES = ("generate", *runner.STAGES)


def one_run(scale: int) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="lakehouse-perf-"))
    try:
        settings = Settings(home=home)
        t0 = time.perf_counter()
        generate(settings, Path(settings.landing_dir), scale=scale, seed=settings.seed, fault_rate=settings.fault_rate)
        times = {"generate": time.perf_counter() - t0}
        summary = runner.run(settings, runner.STAGES, trigger="perf")
        if summary.status != "succeeded":
            raise SystemExit(f"scale {scale}: run failed: {summary.error}")
        times |= summary.stage_seconds
        times["total"] = time.perf_counter() - t0
        times["_rows"] = sum(summary.rows_per_landing.values())
        return times
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"# {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, repeat {args.repeat}")
    header = ["scale", "landing rows", *STAGES, "total"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for scale in args.scales:
        runs = [one_run(scale) for _ in range(args.repeat)]
        med = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in [*STAGES, "total", "_rows"]}
        cells = [str(scale), f"{int(med['_rows']):,}", *(f"{med[s]:.1f} s" for s in STAGES), f"{med['total']:.1f} s"]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
