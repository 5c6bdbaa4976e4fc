"""Benchmark the pipeline against a hand-written DuckDB reference of the same work; prints figures.

    uv run python scripts/bench.py --scales 100 1000 --repeat 3        (what `make bench` runs)

For each scale N the data set is generated once (N + 1 batches, cached under BENCH_DIR/data/scale-N); the last
batch's instrument exports (controller CSV, analyzer Parquet) are held back as "one new batch". Cases, each in a
fresh process timed from outside (wall, peak RSS of that process from wait4), with the load average recorded:

* ``full``: a run over the N batches from an empty home (pipeline: ``lakehouse run``'s code path,
  ``pipelines.runner.run``), alternated with the reference (``scripts/bench_reference.py``) on a copy of the
  same files; prints each stage of both, the ratio and the peak-RSS ratio;
* ``nothing new``: the same home run again;
* ``one new batch``: the held-back batch added to the home of each full run, then run.

Medians over ``--repeat`` (3 by default). The machine is shared: compare ratios, and the load printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(os.environ.get("BENCH_DIR", "/var/tmp/cgt-lakehouse-bench"))
STAGES = ("ingest", "validate", "transform")
HEADER = (
    "| case | ingest CPU / wall s | validate CPU / wall s | transform CPU / wall s | wall s | CPU s | peak RSS GB "
    "| load |\n|---|---|---|---|---|---|---|---|"
)


# --- data ---------------------------------------------------------------------------------------------


def dataset(scale: int) -> Path:
    """BENCH_DIR/data/scale-N with landing/ (N batches of instrument data) and held/ (the next batch)."""
    from pipelines.generate import generate
    from pipelines.settings import Settings

    root = BENCH_DIR / "data" / f"scale-{scale}"
    if (root / "ready").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    landing = root / "landing"
    t0 = time.perf_counter()
    generate(Settings(home=root / "gen"), landing, scale=scale + 1, seed=20261123, fault_rate=0.05)
    last = max(p.name.split("_")[1] for p in (landing / "bioreactor").glob("*.csv"))  # e.g. B26-01001
    held = root / "held"
    for system in ("bioreactor", "analyzer"):
        (held / system).mkdir(parents=True, exist_ok=True)
        for f in (landing / system).glob(f"*{last}*"):
            f.rename(held / system / f.name)
    (root / "ready").write_text(f"generated {scale + 1} batches in {time.perf_counter() - t0:.0f} s; held {last}\n")
    return root


def fresh_home(data: Path, name: str) -> Path:
    home = BENCH_DIR / "homes" / name
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copytree(data / "landing", home / "landing", copy_function=os.link)  # hard links: no copy cost
    return home


# --- one measured process ------------------------------------------------------------------------------


def measure(argv: list[str], env: dict[str, str] | None = None) -> dict:
    """Run argv; its JSON line of stage times, plus wall, peak RSS (this process alone) and the load."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env={**os.environ, **(env or {})}, cwd=ROOT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{' '.join(argv)} failed (status {status}):\n{out[-2000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        rss_gb=usage.ru_maxrss / 1024**2,
        load=(load_before + os.getloadavg()[0]) / 2,
    )
    # Each run as it ends, so a long benchmark interrupted part-way still leaves its figures.
    figures = {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}
    print(f"<!-- {Path(argv[-1]).name}: {json.dumps(figures)} -->", flush=True)
    return result


def pipeline(home: Path) -> dict:
    return measure([sys.executable, __file__, "--one-run", str(home)])


def reference(home: Path) -> dict:
    return measure([sys.executable, str(ROOT / "scripts" / "bench_reference.py"), str(home)])


def one_run(home: Path) -> None:
    """In the child: one pipeline run on embedded defaults in ``home``; prints its stage times as JSON."""
    from pipelines import runner
    from pipelines.settings import Settings

    cpu: dict[str, float] = {}

    def on_stage(stage: str, event: str) -> None:  # CPU of the whole process (DuckDB's threads too) per stage
        if event == "start":
            cpu[stage] = time.process_time()
        else:
            cpu[stage] = time.process_time() - cpu[stage]

    summary = runner.run(Settings(home=home), runner.STAGES, trigger="bench", on_stage=on_stage)
    if summary.status != "succeeded":
        raise SystemExit(f"run failed: {summary.error}")
    stage_cpu = {f"{stage}_cpu": round(seconds, 2) for stage, seconds in cpu.items()}
    print(json.dumps({**summary.stage_seconds, **stage_cpu, "skipped": summary.transform_skipped}))


# --- cases --------------------------------------------------------------------------------------------


def med(runs: list[dict], key: str) -> float:
    return statistics.median(r.get(key) or 0.0 for r in runs)


def row(label: str, runs: list[dict], stages=STAGES) -> str:
    """Per stage "CPU / wall" seconds (CPU of the whole process in that stage), then the process totals."""
    cells = [f"{med(runs, s + '_cpu'):.1f} / {med(runs, s):.1f}" for s in stages]
    return (
        f"| {label} | " + " | ".join(cells) + f" | {med(runs, 'wall'):.1f} | {med(runs, 'cpu'):.1f} | "
        f"{med(runs, 'rss_gb'):.2f} | {med(runs, 'load'):.1f} |"
    )


def ratios(pipe: list[dict], ref: list[dict]) -> str:
    """Medians of the paired (same repetition) ratios: CPU (robust on a shared machine), wall, peak RSS."""
    out = []
    for key, label in (("cpu", "CPU"), ("wall", "wall"), ("rss_gb", "peak RSS")):
        pairs = [p[key] / r[key] for p, r in zip(pipe, ref, strict=True)]
        out.append(f"{label} {statistics.median(pairs):.2f}x (pairs " + ", ".join(f"{x:.2f}" for x in pairs) + ")")
    return "; ".join(out)


def bench_scale(scale: int, repeat: int) -> None:
    data = dataset(scale)
    print(f"\n## {scale} batches ({(data / 'ready').read_text().strip()})\n", flush=True)
    print(HEADER)
    pipe, ref = [], []
    for i in range(repeat):  # alternated, so drifting load hits both alike
        pipe.append(pipeline(fresh_home(data, f"pipe-{scale}-{i}")))
        ref.append(reference(fresh_home(data, f"ref-{scale}")))
    print(row("pipeline, full", pipe), flush=True)
    print(row("reference, full", ref), flush=True)
    print(f"\nfull run, pipeline/reference: {ratios(pipe, ref)}\n")

    # Each full run's home, in place (a DuckLake catalog records its absolute data path: homes are not copied).
    homes = [BENCH_DIR / "homes" / f"pipe-{scale}-{i}" for i in range(repeat)]
    idle = [pipeline(home) for home in homes]
    print(HEADER)
    print(row("pipeline, nothing new", idle), flush=True)
    batch = []
    for home in homes:
        for f in (data / "held").rglob("*.*"):
            shutil.copy2(f, home / "landing" / f.parent.name / f.name)
        batch.append(pipeline(home))
    print(row("pipeline, one new batch", batch), flush=True)
    print(
        f"\nnothing new: {med(idle, 'wall'):.1f} s wall, {med(idle, 'cpu'):.1f} s CPU; one new batch: "
        f"{med(batch, 'wall'):.1f} s wall = {100 * med(batch, 'wall') / med(pipe, 'wall'):.0f} % of a full run's, "
        f"{med(batch, 'cpu'):.1f} s CPU = {100 * med(batch, 'cpu') / med(pipe, 'cpu'):.0f} % of its CPU"
    )
    shutil.rmtree(BENCH_DIR / "homes", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one-run", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_run:
        one_run(args.one_run)
        return
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    print(
        f"# {platform.node()}: {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}; "
        f"medians of {args.repeat}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    for scale in args.scales:
        bench_scale(scale, args.repeat)


if __name__ == "__main__":
    main()
