"""Benchmark: p50/p95 of every chart's data request against marts of N batches in PostgreSQL.

    uv run python -m tests.dashboards.bench --batches 1000 --repeat 20

What it does, all real parts:
1. a throwaway PostgreSQL 15 (tests/fixtures/postgres.py) with a `marts` database and a read-only LOGIN role;
2. the transform test data set (tests/transform/dataset.py) at ``--batches`` batches, built by the real dbt project
   into PostgreSQL marts; the short bioreactor series of that data set is then replaced in ``bioreactor_hourly`` by
   a full-size one (``--hours`` hourly rows x 8 parameters per batch, generated in SQL), so the Bioreactor charts
   read a mart of realistic size without building 100 M minute readings on a 2-core machine;
3. the serving layer (indexes, grants, views, tests) as the pipeline runs it after publication;
4. Superset 6.1 (the venv `make dashboards` creates) on a free loopback port, the assets imported with the BI
   account, and for every chart its data request as its dashboard sends it when opened, ``--repeat`` times after
   one warm-up, timed at the client, never from Superset's cache (``force``): ``POST /api/v1/chart/data`` with the
   chart's saved query context plus the values the dashboard's native filters start with (a filter's default value;
   for a required filter that selects its first item, that item, read from the filter's dataset as Superset lists
   it). The Bioreactor run dashboard requires one batch, so its charts read one batch's rows, as a user's do.
   ``--unfiltered`` times the saved query contexts alone (``GET /api/v1/chart/<id>/data/``) instead: every chart
   over every batch, a request no dashboard sends.

Prints one Markdown table (chart, dataset, rows, p50, p95 in ms) and the machine load; docs/performance.md
records it.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "dashboards"))

import local  # noqa: E402

from pipelines import serving  # noqa: E402
from pipelines.settings import Settings  # noqa: E402
from pipelines.transform import build  # noqa: E402
from tests.fixtures.postgres import running_postgres  # noqa: E402
from tests.transform.dataset import write_dataset  # noqa: E402

BI_ROLE = "bench_bi"
PARAMS = ("temperature", "ph", "dissolved_oxygen", "co2", "rocking_rate", "gas_flow", "perfusion_rate", "volume")

FULL_SIZE_HOURLY = """
insert into marts.bioreactor_hourly
    (batch_id, equipment_id, param, hour_utc, unit_op, unit, readings, good_readings, uncertain_readings,
     bad_readings, mean_value, min_value, max_value, sd_value, _run_id)
select b.batch_id, 'BR-XURI-01', p.param, date_trunc('hour', b.started_at) + h * interval '1 hour', 'expansion',
       p.unit, 60, 58, 1, 1, p.base + random(), p.base - 0.5, p.base + 1.5, 0.3, 'bench'
from marts.batch_overview as b
cross join generate_series(0, %(hours)s - 1) as h
cross join (values ('temperature', 'degC', 37.0), ('ph', 'pH', 7.1), ('dissolved_oxygen', '%%sat', 60.0),
                   ('co2', '%%', 5.0), ('rocking_rate', 'rpm', 12.0), ('gas_flow', 'L/min', 0.1),
                   ('perfusion_rate', 'mL/day', 600.0), ('volume', 'mL', 800.0)) as p (param, unit, base)
"""


ASSETS = REPO / "dashboards" / "assets"


def opening_filters(conn: psycopg.Connection) -> dict[str, list[dict]]:
    """Per chart name, the filters its dashboard applies when opened (read from the dashboards' YAML).

    A native filter's default value applies; a required filter that selects its first item applies that item (the
    column's smallest value in the filter's dataset: Superset lists options in ascending order). A filter applies
    to a chart of its dashboard whose dataset has the filter's column.
    """
    datasets = {}
    for f in (ASSETS / "datasets").glob("*.yaml"):
        d = yaml.safe_load(f.read_text())
        datasets[d["uuid"]] = (d["schema"], d["table_name"], {c["column_name"] for c in d.get("columns", [])})
    charts = {}
    for f in (ASSETS / "charts").glob("*.yaml"):
        c = yaml.safe_load(f.read_text())
        charts[c["uuid"]] = (c["slice_name"], c["dataset_uuid"])
    out: dict[str, list[dict]] = {}
    for f in (ASSETS / "dashboards").glob("*.yaml"):
        dash = yaml.safe_load(f.read_text())
        chart_uuids = [
            n["meta"]["uuid"] for n in dash["position"].values() if isinstance(n, dict) and n.get("type") == "CHART"
        ]
        for flt in dash["metadata"].get("native_filter_configuration", []):
            target = flt["targets"][0] if flt.get("targets") else {}
            col = (target.get("column") or {}).get("name")
            if not col:
                continue
            value = (flt.get("defaultDataMask", {}).get("filterState") or {}).get("value")
            controls = flt.get("controlValues") or {}
            if value is None and controls.get("enableEmptyFilter") and controls.get("defaultToFirstItem"):
                schema, table, _ = datasets[target["datasetUuid"]]
                first = conn.execute(
                    f'select "{col}" from "{schema}"."{table}" where "{col}" is not null order by 1 limit 1'
                ).fetchone()
                value = [first[0]] if first else None
            if value is None:
                continue
            for uuid in chart_uuids:
                name, dataset_uuid = charts[uuid]
                if col in datasets[dataset_uuid][2]:
                    out.setdefault(name, []).append({"col": col, "op": "IN", "val": list(value)})
    return out


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _api(url: str, token: str | None = None, body: dict | None = None) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None)
    if body is not None:
        # Only with a body: a GET declaring a JSON body it does not have is refused by Flask/werkzeug with a bare
        # HTTP 400 ("The browser (or proxy) sent a request that this server could not understand"); every chart's
        # data request failed that way here.
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=1000)
    ap.add_argument("--hours", type=int, default=240, help="hourly bioreactor rows per batch and parameter")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--unfiltered", action="store_true", help="time the saved query contexts without dashboard filters")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dash-bench-"))
    t0 = time.perf_counter()
    with running_postgres("shared_buffers=256MB") as pg:
        dsn = pg.create_database("marts")
        bi_password = secrets.token_urlsafe(16)
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {BI_ROLE}")
            conn.execute(f"CREATE ROLE {BI_ROLE} LOGIN PASSWORD '{bi_password}'")
        lake = work / "lake"
        write_dataset(lake, batches=args.batches)
        settings = Settings(
            home=work / "home", lake_dir=lake, marts_backend="postgres", marts_pg_dsn=dsn, serving_bi_role=BI_ROLE
        )
        result = build(settings, run_id="bench")
        if not result.success:
            sys.exit(f"bench: transform failed: {result.error}")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("delete from marts.bioreactor_hourly")
            conn.execute(FULL_SIZE_HOURLY, {"hours": args.hours})
        served = serving.build(settings, run_id="bench")
        if not served.success:
            sys.exit(f"bench: serving layer failed: {served.error}")
        with psycopg.connect(dsn) as conn:
            filters = {} if args.unfiltered else opening_filters(conn)
            sizes = dict(
                conn.execute(
                    "select relname, n_live_tup from pg_stat_user_tables where schemaname = 'marts'"
                ).fetchall()
            )
        print(
            f"marts built in {time.perf_counter() - t0:.0f} s: "
            + ", ".join(f"{k} {v}" for k, v in sorted(sizes.items()))
        )

        root = work / "superset"
        venv = local.ensure_venv(REPO / ".lakehouse" / "superset")
        local.ensure_config(root, None)
        env = local.superset_env(root, venv)
        local.ensure_metadata(root, venv, env)
        admin_password = local.ensure_admin(venv, env)
        (root / "bi-password").write_text(bi_password)
        uri = f"postgresql+psycopg2://{BI_ROLE}@{pg.host}:{pg.port}/marts"
        imported = subprocess.run(
            [str(venv / "bin" / "python"), str(local.IMPORT_TOOL)],
            env={**env, "DASHBOARDS_MARTS_URI": uri, "DASHBOARDS_MARTS_PASSWORD_FILE": str(root / "bi-password")},
            capture_output=True,
            text=True,
        )
        if imported.returncode != 0:
            sys.exit(imported.stderr.strip().splitlines()[-1])
        port = local.free_port()
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            local.gunicorn_cmd(venv, port), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            local.wait_healthy(base, proc)
            token = _api(
                f"{base}/api/v1/security/login",
                body={"username": local.ADMIN, "password": admin_password, "provider": "db", "refresh": False},
            )["access_token"]
            charts = _api(
                f"{base}/api/v1/chart/?q=(page_size:100,columns:!(id,slice_name,datasource_name_text))", token
            )
            rows_out = []
            errors: list[str] = []
            for chart in sorted(charts["result"], key=lambda c: c["slice_name"]):
                if args.unfiltered:
                    url, body = f"{base}/api/v1/chart/{chart['id']}/data/?force=true", None
                else:
                    context = json.loads(_api(f"{base}/api/v1/chart/{chart['id']}", token)["result"]["query_context"])
                    for query in context["queries"]:
                        query["filters"] = query.get("filters", []) + filters.get(chart["slice_name"], [])
                    url, body = f"{base}/api/v1/chart/data", {**context, "force": True}
                try:
                    first = _api(url, token, body)
                except urllib.error.HTTPError as exc:  # a chart that cannot answer is a finding, not the end
                    errors.append(f"{chart['slice_name']}: HTTP {exc.code} {exc.read()[:300].decode(errors='replace')}")
                    continue
                rows = sum(r.get("rowcount", 0) for r in first["result"])
                times = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    _api(url, token, body)
                    times.append((time.perf_counter() - start) * 1000)
                applied = ", ".join(f"{f['col']}={f['val'][0]}" for f in filters.get(chart["slice_name"], []))
                rows_out.append(
                    (
                        chart["slice_name"],
                        chart.get("datasource_name_text") or "",
                        applied or "-",
                        rows,
                        statistics.median(times),
                        _percentile(times, 95),
                    )
                )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    load = os.getloadavg()
    print(
        f"\n{args.batches} batches, {args.repeat} requests per chart after one warm-up, "
        f"{'saved query contexts, no dashboard filter' if args.unfiltered else 'as each dashboard opens'}; "
        f"load average "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n"
    )
    print("| chart | dataset | dashboard filter | rows | p50 ms | p95 ms |\n|---|---|---|---|---|---|")
    for name, ds, applied, rows, p50, p95 in rows_out:
        print(f"| {name} | {ds} | {applied} | {rows} | {p50:.0f} | {p95:.0f} |")
    for e in errors:
        print(f"chart data request failed: {e}")
    if not rows_out:
        print(f"bench: no chart answered ({len(charts['result'])} charts listed)", file=sys.stderr)
        return 1
    worst = max(r[5] for r in rows_out)
    print(f"\nworst p95: {worst:.0f} ms (target < 200 ms)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
