"""The SPC and Ppk marts agree with an independent Python implementation (tests/transform/spc_reference.py)."""

from __future__ import annotations

import random

import pytest

from pipelines import duck
from tests.transform.compiled import compiled_sql
from tests.transform.spc_reference import Limits, nelson_flags, ppk, xmr_limits

RULES = ("rule_1", "rule_2", "rule_3", "rule_5", "rule_6", "rule_7")


def _series(conn, product: str, attribute: str):
    return conn.execute(
        f"select value, centre, sigma, ucl, lcl, {', '.join(RULES)} from marts.marts.spc_points "
        "where product_code = ? and attribute = ? order by seq",
        [product, attribute],
    ).fetchall()


def test_spc_marts_match_the_reference(embedded_build):
    conn = duck.connect(embedded_build.settings, lake=False, read_only=True)
    try:
        rows = _series(conn, "CT-019", "viability")
        baseline = conn.execute(
            "select baseline_window_batches from marts.marts.spc_limits where product_code = 'CT-019' "
            "and attribute = 'viability'"
        ).fetchone()[0]
    finally:
        conn.close()
    values = [r[0] for r in rows]
    assert values == embedded_build.facts["viability"]
    ref = xmr_limits(values, baseline)
    centre, sigma, ucl, lcl = rows[0][1:5]
    assert (centre, sigma, ucl, lcl) == pytest.approx((ref.centre, ref.sigma, ref.ucl, ref.lcl))
    expected = nelson_flags(values, ref)
    got = [dict(zip(RULES, r[5:], strict=True)) for r in rows]
    assert got == expected
    # the data set was built to trip these rules; the comparison above is not vacuous
    assert {rule for point in got for rule, hit in point.items() if hit} >= {"rule_1", "rule_2", "rule_3", "rule_5"}


def test_ppk_matches_the_reference(embedded_build):
    conn = duck.connect(embedded_build.settings, lake=False, read_only=True)
    try:
        rows = conn.execute(
            "select p.spec_id, p.lsl, p.usl, p.ppk, list(o.result_value) from marts.marts.ppk_cqa p "
            "join marts.marts.qc_results_vs_spec o on o.spec_id = p.spec_id "
            "and o.result_value is not null and o.is_cqa "
            "group by all"
        ).fetchall()
    finally:
        conn.close()
    assert rows
    checked = 0
    for spec_id, lsl, usl, got, values in rows:
        want = ppk(values, lsl, usl)
        assert got == pytest.approx(want) if want is not None else got is None, spec_id
        checked += want is not None
    assert checked >= 2


def _random_series(seed: int, n: int) -> list[float]:
    """Series with shifts, trends and repeats, so every rule gets exercised over many seeds."""
    rng = random.Random(seed)
    values, level = [], 50.0
    for _ in range(n):
        kind = rng.random()
        if kind < 0.05:
            level += rng.choice([-3, 3])
        if kind < 0.1 and values:
            values.append(values[-1])  # ties break trends, sit on no side if on the centre
            continue
        if kind < 0.2:
            values.append(round(level + len(values) * 0.3, 1))  # a drift
            continue
        values.append(round(rng.gauss(level, 1.0), 1))
    return values


def spc_input_rows(values: list[float], limits: Limits) -> tuple[list[tuple], tuple]:
    """Rows for stand-ins of int_cqa_observations and int_spc_limits holding one series."""
    obs = []
    for i, v in enumerate(values):
        prev = values[i - 1] if i else None
        direction = None if prev is None else (v > prev) - (v < prev)
        moving_range = None if prev is None else abs(v - prev)
        obs.append(("P", "a", f"b{i + 1}", i + 1, v, moving_range, direction))
    return obs, ("P", "a", 20, limits.centre, limits.sigma)


OBS_DDL = (
    "create table obs (product_code varchar, attribute varchar, batch_id varchar, seq bigint, value double, "
    "moving_range double, direction integer, batch_started_at timestamptz, sample_id varchar, unit varchar)"
)
LIM_DDL = (
    "create table lim (product_code varchar, attribute varchar, baseline_points bigint, centre double, "
    "sigma double, ucl double, lcl double)"
)


@pytest.mark.parametrize("seed", range(25))
def test_spc_sql_matches_the_reference_on_random_series(embedded_build, seed):
    """The mart's compiled SQL, run over one random series in DuckDB, equals the reference."""
    import duckdb

    values = _random_series(seed, 60)
    ref = xmr_limits(values, 20)
    obs, lim = spc_input_rows(values, ref)
    sql = compiled_sql(embedded_build.settings, "spc_points", {"int_cqa_observations": "obs", "int_spc_limits": "lim"})
    conn = duckdb.connect()
    try:
        conn.execute(OBS_DDL)
        conn.executemany(
            "insert into obs (product_code, attribute, batch_id, seq, value, moving_range, direction) "
            "values (?, ?, ?, ?, ?, ?, ?)",
            obs,
        )
        conn.execute(LIM_DDL)
        conn.execute(
            "insert into lim (product_code, attribute, baseline_points, centre, sigma) values (?, ?, ?, ?, ?)",
            list(lim),
        )
        rows = conn.execute(f"select {', '.join(RULES)} from ({sql}) as spc order by seq").fetchall()
    finally:
        conn.close()
    assert [dict(zip(RULES, r, strict=True)) for r in rows] == nelson_flags(values, ref)
