"""The hand-written DuckDB reference `scripts/bench.py` compares the pipeline with: the same heavy work, no framework.

    uv run python scripts/bench_reference.py HOME      (HOME/landing holds the generated files)

Stages, as the pipeline does them for the bioreactor controller exports (99 % of the rows) and for every file's bytes:

* ingest: SHA-256 of every landing file while copying it into HOME/raw/<sha256> (content-addressed);
* validate: the controller CSVs of registered instruments (the pipeline quarantines the others) parsed by
  DuckDB (metadata lines read in Python), the timestamp parsed once per minute row, melted to one row per
  parameter, the bioreactor suite's rules as SQL (reject: missing/duplicate/unparseable timestamp, unknown quality,
  value out of range or unparseable; flag: missing value), accepted and rejected rows to zstd Parquet with the
  lineage columns, written by pyarrow like the pipeline's (one file each; rejected rows only when there are some);
* transform: the curated DuckLake table (latest version per key) and the hourly mart in a DuckDB file.

No Great Expectations, no dbt, no control database, no lineage: what is left is the floor the pipeline is held to.
Prints one JSON line: each stage's wall seconds, and its CPU seconds (``<stage>_cpu``).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.duck import load_extensions
from pipelines.validate.expectations import equipment_ids

PARAMS = {  # the bioreactor suite's ranges (great_expectations/bioreactor__readings.json)
    "temperature": (0, 60),
    "ph": (0, 14),
    "dissolved_oxygen": (0, 200),
    "co2": (0, 100),
    "rocking_rate": (0, 100),
    "gas_flow": (0, 10),
    "perfusion_rate": (0, 5000),
    "volume": (0, 10000),
}


def ingest(landing: Path, raw: Path) -> dict[Path, str]:
    raw.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        tmp = raw / ".incoming"
        with path.open("rb") as fin, tmp.open("wb") as fout:
            while chunk := fin.read(1 << 20):
                digest.update(chunk)
                fout.write(chunk)
        hashes[path] = digest.hexdigest()
        tmp.replace(raw / hashes[path])
    return hashes


def controller_meta(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The '# key: value' lines, and the unit of each column (the units row under the header)."""
    meta = {}
    with path.open() as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            key, _, value = line[1:].partition(":")
            meta[key.strip()] = value.strip()
        units = dict(zip(line.strip().split(","), fh.readline().strip().split(","), strict=False))
    return meta, units


def validate(con: duckdb.DuckDBPyConnection, landing: Path, lake: Path, hashes: dict[Path, str]) -> None:
    """Per controller file (as the pipeline lands them): parse, melt and check in one DuckDB query, then the
    accepted rows (and rejected rows, if any) to zstd Parquet, one file each, written by pyarrow as the pipeline
    writes them (DuckDB's Parquet writer costs 3-4x the CPU for these 116 k-row files, docs/performance.md)."""
    out = lake / "landing" / "bioreactor__readings"
    rejected = lake / "rejected" / "bioreactor__readings"
    out.mkdir(parents=True, exist_ok=True)
    rejected.mkdir(parents=True, exist_ok=True)
    ranges = " ".join(f"when '{p}' then value between {lo} and {hi}" for p, (lo, hi) in PARAMS.items())
    units_sql = " ".join(f"when '{p}' then ?" for p in PARAMS)
    at = datetime.now(UTC).isoformat()
    # The timestamp is parsed once per minute row (wide), not once per melted reading.
    query = f"""
        with wide as (
            select * exclude (timestamp), try_cast(timestamp as timestamptz) as ts_utc,
                   row_number() over () as _source_row,
                   count(*) over (partition by timestamp) > 1 as ts_dup
            from read_csv(?, comment = '#', header = true, all_varchar = true)
            where timestamp is distinct from 'ISO-8601'
        ),
        long as (
            select *, try_cast(text as double) as value
            from wide unpivot include nulls (text for param in ({", ".join(PARAMS)}))
        )
        select ? as batch_id, ? as unit_op, ? as equipment_id, param, ts_utc, value,
               case param {units_sql} end as unit, quality,
               ? as _source_sha256, ? as _source_file, _source_row, 'reference' as _ingest_run_id,
               '{at}'::timestamptz as _ingested_at,
               case when text is null then param || '_missing' end as _dq_flags,
               ts_utc is null or ts_dup or quality is null or quality not in ('good', 'uncertain', 'bad')
               or (text is not null and value is null)
               or not coalesce(case param {ranges} end, true) as _rejected
        from long"""
    registry = equipment_ids()  # the equipment registry, as the pipeline checks it
    for f in sorted((landing / "bioreactor").glob("*.csv")):
        meta, units = controller_meta(f)
        if meta.get("instrument_id") not in registry:
            continue  # quarantined by the pipeline (unknown instrument)
        sha = hashes[f]
        checked = con.execute(
            query,
            [
                str(f),
                meta.get("batch_id"),
                meta.get("unit_operation"),
                meta.get("instrument_id"),
                *(units.get(p) for p in PARAMS),
                sha,
                f.name,
            ],
        ).to_arrow_table()
        flag = checked.column("_rejected")
        checked = checked.drop_columns(["_rejected"])
        n_rejected = pc.sum(flag).as_py() or 0
        accepted = checked.filter(pc.invert(flag)) if n_rejected else checked
        pq.write_table(accepted, out / f"{sha}.parquet", compression="zstd")
        if n_rejected:
            pq.write_table(checked.filter(flag), rejected / f"{sha}.parquet", compression="zstd")


def transform(con: duckdb.DuckDBPyConnection, home: Path, lake: Path) -> None:
    (lake / "ducklake").mkdir(parents=True, exist_ok=True)
    con.execute(
        f"attach 'ducklake:{home / 'catalog.ducklake'}' as lake "
        f"(data_path '{lake / 'ducklake'}/', data_inlining_row_limit 0)"
    )
    con.execute(f"attach '{home / 'marts.duckdb'}' as marts")
    # Latest version per key; only batch x reactor groups delivered in several files need ranking.
    con.execute(
        f"""create table lake.bioreactor_readings as
            with landing as (
                select *
                from read_parquet('{lake}/landing/bioreactor__readings/*.parquet')
            ),
            multi as (
                select batch_id, equipment_id from landing group by all having count(distinct _source_sha256) > 1
            )
            select * from landing anti join multi using (batch_id, equipment_id)
            union all by name
            select * from landing semi join multi using (batch_id, equipment_id)
            qualify row_number() over (partition by batch_id, equipment_id, param, ts_utc
                                       order by _ingested_at desc, _source_file desc) = 1"""
    )
    con.execute(
        """create table marts.bioreactor_hourly as
           select batch_id, equipment_id, param, date_trunc('hour', ts_utc) as hour_utc, any_value(unit_op),
                  any_value(unit), count(*), count(*) filter (where quality = 'good' and value is not null),
                  count(*) filter (where quality = 'uncertain'), count(*) filter (where quality = 'bad'),
                  avg(value) filter (where quality = 'good'), min(value) filter (where quality = 'good'),
                  max(value) filter (where quality = 'good'), stddev_samp(value) filter (where quality = 'good')
           from lake.bioreactor_readings group by all"""
    )


def main(home: Path) -> None:
    times: dict[str, float] = {}

    def timed(stage: str, fn, *args):  # wall and CPU (the whole process: DuckDB's threads too) of one stage
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn(*args)
        times[stage] = time.perf_counter() - wall
        times[f"{stage}_cpu"] = time.process_time() - cpu
        return result

    hashes = timed("ingest", ingest, home / "landing", home / "raw")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    load_extensions(con)
    timed("validate", validate, con, home / "landing", home / "lake", hashes)
    timed("transform", transform, con, home, home / "lake")
    con.close()
    print(json.dumps(times))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
