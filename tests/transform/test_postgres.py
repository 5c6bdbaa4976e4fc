"""The deployed path: DuckLake catalog and marts in a real PostgreSQL, the lake on an S3 API server.

PostgreSQL comes from the shared `postgres_server` fixture (Debian's PG 15 binaries, throwaway cluster); the
lake is moto's standalone S3 server (`s3_server`), which DuckDB's httpfs talks to over HTTP like it would to
MinIO. Landing Parquet is uploaded there the way ingest writes it.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pipelines import duck
from pipelines.settings import Settings
from pipelines.transform import build
from tests.transform.compiled import compiled_sql
from tests.transform.dataset import write_dataset
from tests.transform.spc_reference import nelson_flags, xmr_limits
from tests.transform.test_build import INTEGRITY_MARTS
from tests.transform.test_spc import RULES, _random_series, spc_input_rows

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def deployed_build(tmp_path_factory, postgres_server, s3_server):
    s3_server.create_bucket("lake")
    local = tmp_path_factory.mktemp("landing-src")
    facts = write_dataset(local)
    client = s3_server.client()
    for path in sorted((local / "landing").rglob("*.parquet")):
        client.upload_file(str(path), "lake", path.relative_to(local).as_posix())
    settings = Settings(
        home=tmp_path_factory.mktemp("deployed"),
        lake_backend="s3",
        s3_endpoint_url=s3_server.endpoint_url,
        s3_access_key_id=s3_server.access_key_id,
        s3_secret_access_key=s3_server.secret_access_key,
        catalog_backend="postgres",
        catalog_pg_dsn=postgres_server.create_database("ducklake"),
        marts_backend="postgres",
        marts_pg_dsn=postgres_server.create_database("marts"),
    )
    result = build(settings, run_id="run-deployed-1")
    return settings, result, facts, postgres_server, s3_server


def test_build_writes_curated_to_s3_and_marts_to_postgres(deployed_build):
    settings, result, facts, pg, s3 = deployed_build
    failures = [(m.name, m.message) for m in result.failed_models] + [(t.name, t.message) for t in result.failed_tests]
    assert result.success, failures
    marts = {m.name: m for m in result.models if m.layer == "marts"}
    with psycopg.connect(settings.marts_pg_dsn.get_secret_value()) as conn:
        for name, model in marts.items():
            if name in INTEGRITY_MARTS:
                continue  # empty control DB in a bare build(); tests/e2e checks them after a real run
            count, run_ids = conn.execute(
                f"select count(*), array_agg(distinct _run_id) from marts.{name}"  # noqa: S608 (test names)
            ).fetchone()
            assert count == model.rows and count > 0, name
            assert run_ids == ["run-deployed-1"], name
        overview = conn.execute("select count(*) from marts.batch_overview where coi_verified").fetchone()[0]
    assert overview == facts["batches"]
    # the catalog lives in PostgreSQL, the curated data files in the lake bucket
    with psycopg.connect(settings.catalog_pg_dsn.get_secret_value()) as conn:
        tables = {r[0] for r in conn.execute("select table_name from public.ducklake_table where end_snapshot is null")}
    assert {"batches", "qc_results", "bioreactor_readings"} <= tables
    keys = [
        o["Key"] for o in s3.client().list_objects_v2(Bucket="lake", Prefix="ducklake/curated/batches/")["Contents"]
    ]
    assert keys and all(k.endswith(".parquet") for k in keys)


def test_lineage_datasets_name_postgres_and_s3(deployed_build):
    settings, result, _facts, pg, _s3 = deployed_build
    models = {m.name: m for m in result.models}
    assert (models["batch_overview"].output.namespace, models["batch_overview"].output.name) == (
        f"postgres://{pg.host}:{pg.port}",
        "marts.marts.batch_overview",
    )
    assert (models["batches"].output.namespace, models["batches"].output.name) == (
        "s3://lake",
        "ducklake/curated/batches",
    )
    assert [(d.namespace, d.name) for d in models["stg_mes__batches"].inputs] == [("s3://lake", "landing/mes__batches")]


def test_second_run_on_the_postgres_catalog(deployed_build):
    settings, *_ = deployed_build
    again = build(settings, run_id="run-deployed-2", select="batches batch_overview")
    assert again.success, [(m.name, m.message) for m in again.failed_models]
    conn = duck.connect(settings, read_only=True)
    try:
        assert conn.execute("select distinct _run_id from marts.marts.batch_overview").fetchall() == [
            ("run-deployed-2",)
        ]
    finally:
        conn.close()


@pytest.mark.parametrize("seed", range(10))
def test_spc_sql_runs_unchanged_in_postgres(deployed_build, seed):
    """The compiled SPC window SQL gives the reference flags in PostgreSQL too (portable, not DuckDB-only)."""
    settings, _result, _facts, pg, _s3 = deployed_build
    values = _random_series(seed, 60)
    ref = xmr_limits(values, 20)
    obs, lim = spc_input_rows(values, ref)
    sql = compiled_sql(settings, "spc_points", {"int_cqa_observations": "obs", "int_spc_limits": "lim"})
    with psycopg.connect(pg.dsn("postgres")) as conn:
        conn.execute(
            "create temp table obs (product_code text, attribute text, batch_id text, seq bigint, value float8, "
            "moving_range float8, direction int, batch_started_at timestamptz, sample_id text, unit text)"
        )
        conn.cursor().executemany(
            "insert into obs (product_code, attribute, batch_id, seq, value, moving_range, direction) "
            "values (%s, %s, %s, %s, %s, %s, %s)",
            obs,
        )
        conn.execute(
            "create temp table lim (product_code text, attribute text, baseline_points bigint, centre float8, "
            "sigma float8, ucl float8, lcl float8)"
        )
        conn.execute(
            "insert into lim (product_code, attribute, baseline_points, centre, sigma) values (%s,%s,%s,%s,%s)", lim
        )
        rows = conn.execute(f"select {', '.join(RULES)} from ({sql}) as spc order by seq").fetchall()
    assert [dict(zip(RULES, r, strict=True)) for r in rows] == nelson_flags(values, ref)


def test_unreachable_catalog_is_one_clear_error(tmp_path: Path, postgres_server):
    settings = Settings(
        home=tmp_path,
        catalog_backend="postgres",
        catalog_pg_dsn=f"host=127.0.0.1 port={postgres_server.port} dbname=no_such_db user=postgres password=s3cr3t",
    )
    with pytest.raises(duck.DuckSetupError) as err:
        duck.connect(settings, marts=False)
    assert "\n" not in str(err.value)
    assert "s3cr3t" not in str(err.value)
