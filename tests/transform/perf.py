"""Time `dbt build` (pipelines.transform.build) on synthetic landing Parquet at a given scale, and the same heavy
work as hand-written DuckDB SQL for comparison. Prints figures; asserts nothing (docs/transform.md quotes them).

    uv run python -m tests.transform.perf --batches 50 --repeat 3

Each batch carries a 10-day expansion at 1-minute resolution for 8 parameters (115,200 readings per batch).
The first build of a process includes `dbt parse`; later ones reuse the in-process manifest (as a Dagster code
server or a multi-stage CLI run does). CPU time (all threads of this process) is printed beside wall time: on a
shared machine it is the figure that does not depend on other people's load.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from pipelines import duck
from pipelines.settings import Settings
from pipelines.transform import build
from tests.transform.dataset import write_dataset

PARAMS = ("temperature", "ph", "dissolved_oxygen", "co2", "rocking_rate", "gas_flow", "perfusion_rate", "volume")


def hand_written_seconds(settings: Settings) -> float:
    """The heavy part of the marts as one would write it by hand: dedupe the readings into a table, then the
    hourly summary — no dbt, no DuckLake."""
    conn = duck.connect(settings, lake=False, marts=False)
    root = duck.landing_location(settings, "bioreactor__readings")
    try:
        started = time.perf_counter()
        conn.execute(
            f"""create table readings as select * from read_parquet('{root}/*.parquet')
                qualify row_number() over (partition by batch_id, equipment_id, param, ts_utc
                                           order by _ingested_at desc) = 1"""
        )
        conn.execute(
            """create table hourly as select batch_id, equipment_id, param, date_trunc('hour', ts_utc) as h,
                   count(*), avg(value) filter (where quality = 'good'), min(value), max(value), stddev_samp(value)
               from readings group by all"""
        )
        return time.perf_counter() - started
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="transform-perf-") as tmp:
        settings = Settings(home=Path(tmp))
        t0 = time.perf_counter()
        facts = write_dataset(Path(settings.lake_dir), batches=args.batches, reactor_minutes=14400, params=PARAMS)
        readings = facts["batches"] * facts["readings_per_batch"]
        print(
            f"landing data: {args.batches} batches, {readings:,} bioreactor readings ({time.perf_counter() - t0:.1f} s)"
        )
        walls, layers = [], defaultdict(list)
        for i in range(args.repeat):
            started, cpu_started = time.perf_counter(), time.process_time()
            result = build(settings, run_id=f"perf-{i}")
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            assert result.success, result.error
            walls.append(wall)
            per_layer: dict[str, float] = defaultdict(float)
            for m in result.models:
                per_layer[m.layer] += m.duration_s
            per_layer["tests"] = sum(t.duration_s for t in result.tests)
            for layer, seconds in per_layer.items():
                layers[layer].append(seconds)
            label = "cold (parse + build)" if i == 0 else "warm (manifest in memory)"
            slowest = sorted(result.models, key=lambda m: m.duration_s, reverse=True)[:4]
            print(
                f"build {i + 1}: {wall:.1f} s wall, {cpu:.1f} s CPU (all threads) {label}; "
                f"models {sum(m.duration_s for m in result.models):.1f} s; "
                f"{len(result.models)} models, {len(result.tests)} tests; slowest: "
                + ", ".join(f"{m.name} {m.duration_s:.1f} s" for m in slowest)
            )
        warm = walls[1:] or walls
        print(f"dbt build median (warm): {statistics.median(warm):.1f} s; cold: {walls[0]:.1f} s")
        for layer in ("seed", "staging", "intermediate", "curated", "marts", "tests"):
            print(f"  {layer:<12} median {statistics.median(layers[layer]):.1f} s (sum of node times)")
        print(f"hand-written DuckDB SQL (dedupe + hourly summary only): {hand_written_seconds(settings):.1f} s")


if __name__ == "__main__":
    main()
