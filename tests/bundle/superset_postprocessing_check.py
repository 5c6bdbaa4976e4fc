"""Run with a Superset venv's Python: roles/superset/files/superset_config_postprocessing.py against Superset itself.

    python superset_postprocessing_check.py CONFIG_FRAGMENT WORKDIR

1. Wiring: a superset_config.py with the fragment; ``create_app()`` runs its FLASK_APP_MUTATOR, after which the
   pivot and aggregate operations call the replacement.
2. Results: every post-processing case below (pivot with and without a series column, aggregate; mean, sum, min,
   max and two operators it leaves alone; numpy floats with NaN and all-NaN groups, ints, bools, datetimes on the
   axis, nullable and Decimal columns) computed by Superset as installed and again with the replacement. Reported:
   cases whose shape, labels, dtypes or error differ; cases whose values are not bit-identical, with the largest
   relative difference; and whether every one-row-per-group case (a chart's pivot: its SQL already grouped by the
   axis) is bit-identical.
3. Time: an XmR chart's two pivots at 996 points (4 metrics + 1), median of 10, before and after.

Prints one JSON object.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import statistics
import sys
import time
import warnings
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

warnings.simplefilter("ignore")  # pandas' FutureWarnings about numpy callables: the unpatched path emits them


def cases() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(7)
    x = np.repeat(np.arange(20), 3)
    n = len(x)
    one = np.arange(40)
    return {
        "float": pd.DataFrame({"x": x, "g": rng.choice(["a", "b", None], n), "m": rng.random(n)}),
        "float_nan": pd.DataFrame(
            {"x": x, "g": rng.choice(["a", "b"], n), "m": np.where(rng.random(n) < 0.5, np.nan, rng.random(n))}
        ),
        "all_nan_groups": pd.DataFrame({"x": x, "g": "a", "m": np.where(x % 4 == 0, np.nan, 1.5)}),
        "large_float": pd.DataFrame(
            {"x": np.repeat(np.arange(20), 50), "g": "a", "m": rng.normal(1e6, 1e3, 1000) * 1.000001}
        ),
        "int": pd.DataFrame({"x": x, "g": rng.choice(["a", "b"], n), "m": rng.integers(0, 9, n)}),
        "bool": pd.DataFrame({"x": x, "g": "a", "m": rng.random(n) < 0.5}),
        "datetime_axis": pd.DataFrame({"x": pd.to_datetime(x, unit="D"), "g": "a", "m": rng.random(n)}),
        "nullable_int": pd.DataFrame({"x": x, "g": "a", "m": pd.array(np.where(x % 5 == 0, None, x), dtype="Int64")}),
        "decimal": pd.DataFrame({"x": x, "g": "a", "m": [Decimal(str(v)) if v % 7 else None for v in range(n)]}),
        # a chart's pivot: one row per axis value (and series), as its SQL grouped them
        "one_row_per_group": pd.DataFrame({"x": one, "g": "a", "m": rng.normal(87.0, 4.0, 40)}),
        "one_row_per_group_series": pd.DataFrame(
            {"x": np.repeat(one, 2), "g": np.tile(["a", "b"], 40), "m": rng.normal(5.0, 0.3, 80)}
        ),
    }


def compute(pp) -> dict[str, object]:
    out: dict[str, object] = {}
    for (name, df), op in itertools.product(cases().items(), ["mean", "sum", "min", "max", "median", "std"]):
        runs = {
            "pivot": lambda d, o=op: pp.pivot(
                d, index=["x"], columns=[], aggregates={"m": {"operator": o}}, drop_missing_columns=False
            ),
            "pivot_series": lambda d, o=op: pp.pivot(
                d, index=["x"], columns=["g"], aggregates={"m": {"operator": o}}, drop_missing_columns=False
            ),
            "aggregate": lambda d, o=op: pp.aggregate(d, groupby=["x"], aggregates={"m": {"operator": o}}),
        }
        for kind, run in runs.items():
            try:
                out[f"{name}/{op}/{kind}"] = run(df.copy())
            except Exception as exc:  # an error must stay the same error
                out[f"{name}/{op}/{kind}"] = f"{type(exc).__name__}: {exc}"
    return out


def xmr_ms(pp) -> float:
    n = 996
    rng = np.random.default_rng(3)
    a = pd.DataFrame({"seq": np.arange(1, n + 1), "v": rng.normal(87, 4, n), "c": 87.0, "u": 99.0, "l": 75.0})
    b = pd.DataFrame({"seq": np.arange(1, n + 1), "nv": np.where(rng.random(n) < 0.1, 90.0, np.nan)})
    times = []
    for _ in range(10):
        start = time.perf_counter()
        for df, metrics in ((a, ["v", "c", "u", "l"]), (b, ["nv"])):
            pivoted = pp.pivot(
                df.copy(),
                index=["seq"],
                columns=[],
                aggregates={m: {"operator": "mean"} for m in metrics},
                drop_missing_columns=False,
            )
            pp.flatten(pivoted)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    fragment, work = Path(sys.argv[1]), Path(sys.argv[2])
    config = work / "superset_config.py"
    config.write_text(
        f"SECRET_KEY = {secrets.token_urlsafe(32)!r}\n"
        f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{work}/superset.db'\n"
        "SUPERSET_LOAD_EXAMPLES = False\n" + fragment.read_text()
    )
    os.environ["SUPERSET_CONFIG_PATH"] = str(config)
    from superset.utils import pandas_postprocessing as pp

    pivot_module = sys.modules["superset.utils.pandas_postprocessing.pivot"]
    before, before_ms = compute(pp), xmr_ms(pp)
    from superset.app import create_app

    create_app()  # runs FLASK_APP_MUTATOR
    wired = all(
        getattr(sys.modules[f"superset.utils.pandas_postprocessing.{m}"]._get_aggregate_funcs, "lakehouse_fast", False)
        for m in ("utils", "pivot", "aggregate")
    )
    after, after_ms = compute(pp), xmr_ms(pp)

    different, inexact, worst, one_row_exact = [], [], 0.0, True
    for key, b in before.items():
        a = after[key]
        if isinstance(a, str) or isinstance(b, str):
            if a != b:
                different.append(f"{key}: {b!r} -> {a!r}")
            continue
        try:
            pd.testing.assert_frame_equal(b, a, check_exact=False, rtol=1e-12, atol=0)
        except AssertionError as exc:
            different.append(f"{key}: {str(exc).splitlines()[0]}")
            continue
        try:
            pd.testing.assert_frame_equal(b, a, check_exact=True)
        except AssertionError:
            inexact.append(key)
            one_row_exact = one_row_exact and not key.startswith("one_row_per_group")
            num_b = b.select_dtypes("number").to_numpy(dtype=float)
            num_a = a.select_dtypes("number").to_numpy(dtype=float)
            with np.errstate(invalid="ignore", divide="ignore"):
                rel = np.nanmax(np.abs(num_a - num_b) / np.abs(num_b))
            worst = max(worst, float(rel))
    print(
        json.dumps(
            {
                "wired": wired,
                "pivot_module_patched": getattr(pivot_module._get_aggregate_funcs, "lakehouse_fast", False),
                "cases": len(before),
                "different": different,
                "not_bit_identical": inexact,
                "worst_relative_difference": worst,
                "one_row_per_group_bit_identical": one_row_exact,
                "xmr_pivots_ms_before": round(before_ms, 1),
                "xmr_pivots_ms_after": round(after_ms, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
