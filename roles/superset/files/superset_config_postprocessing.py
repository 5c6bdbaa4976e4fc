# --- Chart post-processing: pandas aggregates mean/sum/min/max itself (ADR 0195) -------------------------------------
# Superset 6.1 hands each pivot/aggregate operator to pandas as functools.partial(numpy function), which pandas can
# only call once per group and metric in Python. Every time-series chart's data request pivots its rows on the x
# axis, so the XmR chart of 996 batches paid ~5,000 such calls per request (half its time at 1,000 batches; the SQL
# takes 1 ms). Upstream passes the operator's name instead since apache/superset#41025 (after 6.1.0); this does the
# same for mean, sum, min and max without options on numpy number columns, and leaves every other case as Superset
# builds it. Results: bit-identical for a chart's pivot (one row per axis value), otherwise within rounding
# (tests/bundle/test_superset_postprocessing.py). Drop this block once the installed Superset has that change.
def _fast_aggregates(app):
    import importlib
    from functools import partial

    import numpy as np
    from pandas import NamedAgg

    # the modules, not the functions the package re-exports under the same names
    utils, pivot, aggregate = (
        importlib.import_module(f"superset.utils.pandas_postprocessing.{m}") for m in ("utils", "pivot", "aggregate")
    )

    original = utils._get_aggregate_funcs
    if getattr(original, "lakehouse_fast", False):
        return
    native = {np.mean: "mean", np.sum: "sum", np.min: "min", np.max: "max"}

    def _get_aggregate_funcs(df, aggregates):
        funcs = original(df, aggregates)
        for name, agg in funcs.items():
            f = agg.aggfunc
            dtype = df[agg.column].dtype
            plain = isinstance(dtype, np.dtype) and dtype.kind in "fiub"  # numpy numbers; nullable/object: as built
            if plain and isinstance(f, partial) and not f.args and not f.keywords and f.func in native:
                funcs[name] = NamedAgg(column=agg.column, aggfunc=native[f.func])
        return funcs

    _get_aggregate_funcs.lakehouse_fast = True
    for module in (utils, pivot, aggregate):
        module._get_aggregate_funcs = _get_aggregate_funcs


FLASK_APP_MUTATOR = _fast_aggregates
