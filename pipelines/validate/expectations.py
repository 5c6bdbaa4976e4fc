"""Expectation suites (great_expectations/<feed>.json) and running them with Great Expectations 1.x on DataFrames.

Each suite is a versioned JSON file loaded by code (``meta.version``). Every expectation carries
``meta.name`` (the short name that appears in ``_dq_flags`` and reject reasons), ``meta.policy`` — ``flag`` (row
kept, name added to ``_dq_flags``) or ``reject`` (row goes to the rejected table with the name as reason) — and
``meta.why``. Suite parameters (``{"$PARAMETER": "equipment_ids"}``) are filled from master data at run time.

``import great_expectations`` costs seconds, so it happens once per process, on first use, with one ephemeral
context and one pandas data source reused for every batch. GE's SQL path over DuckDB is not used (broken).
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.paths import SEEDS_DIR, SUITES_DIR

EQUIPMENT_SEED = SEEDS_DIR / "equipment.csv"
POLICIES = ("flag", "reject")
FILE_COLUMN = "_file_ix"  # which file of a batch a row came from (added by the caller, see _per_file)


class SuiteError(RuntimeError):
    """A suite file is missing or invalid (one-line message)."""


@dataclass(frozen=True)
class Rule:
    name: str
    policy: str
    type: str
    column: str | None
    why: str


@dataclass(frozen=True)
class Suite:
    feed: str
    version: str
    path: Path
    rules: tuple[Rule, ...]
    raw: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.feed}@{self.version}"


@dataclass
class RuleResult:
    rule: Rule
    success: bool
    unexpected: np.ndarray  # positions (0-based, in the validated frame) of rows failing the rule
    observed: dict[str, Any]


def _column(kwargs: dict[str, Any]) -> str | None:
    if "column" in kwargs:
        return kwargs["column"]
    if "column_list" in kwargs:
        return ",".join(kwargs["column_list"])
    return None


@lru_cache
def load_suite(feed: str) -> Suite:
    path = SUITES_DIR / f"{feed}.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SuiteError(f"cannot load expectation suite {path}: {exc}") from None
    version = str(raw.get("meta", {}).get("version") or "")
    if not version:
        raise SuiteError(f"{path}: meta.version missing")
    rules = []
    for i, e in enumerate(raw.get("expectations", [])):
        meta = e.get("meta") or {}
        if meta.get("policy") not in POLICIES or not meta.get("name"):
            raise SuiteError(f"{path}: expectation {i} needs meta.name and meta.policy in {POLICIES}")
        rules.append(Rule(meta["name"], meta["policy"], e["type"], _column(e.get("kwargs", {})), meta.get("why", "")))
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise SuiteError(f"{path}: expectation names must be unique")
    return Suite(feed, version, path, tuple(rules), raw)


@lru_cache
def equipment_ids() -> frozenset[str]:
    """Instrument/equipment ids of the equipment registry (dbt/seeds/equipment.csv): the one list of them."""
    with EQUIPMENT_SEED.open(newline="") as fh:
        return frozenset(row["equipment_id"].strip() for row in csv.DictReader(fh) if row.get("equipment_id"))


def suite_parameters() -> dict[str, Any]:
    return {"equipment_ids": sorted(equipment_ids())}


@lru_cache
def _batch_definition():
    """One ephemeral GE context per process (GE is imported here, once)."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    import great_expectations as gx

    # GE logs routine INFO lines (temporary docs dirs) and sets INFO on some of its own loggers at import; the
    # CLI shows warnings only, so every GE logger is put back to WARNING.
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("great_expectations")]:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("lakehouse").add_dataframe_asset("raw_file")
    return asset.add_batch_definition_whole_dataframe("whole_file")


@lru_cache
def _gx_suite(feed: str):
    from great_expectations.core import ExpectationSuite

    raw = load_suite(feed).raw
    return ExpectationSuite(
        name=raw["name"], expectations=[_per_file(e) for e in raw["expectations"]], meta=raw.get("meta", {})
    )


def _per_file(expectation: dict[str, Any]) -> dict[str, Any]:
    """Uniqueness holds within one file: several files are validated as one frame, so key on FILE_COLUMN too."""
    kwargs = dict(expectation["kwargs"])
    if expectation["type"] == "expect_column_values_to_be_unique":
        kwargs["column_list"] = [FILE_COLUMN, kwargs.pop("column")]
        return {**expectation, "type": "expect_compound_columns_to_be_unique", "kwargs": kwargs}
    if expectation["type"] == "expect_compound_columns_to_be_unique":
        kwargs["column_list"] = [FILE_COLUMN, *kwargs["column_list"]]
        return {**expectation, "kwargs": kwargs}
    return expectation


def run(suite: Suite, frame: pd.DataFrame) -> tuple[dict[str, Any], list[RuleResult]]:
    """Validate ``frame`` (index 0..n-1, one or more files told apart by FILE_COLUMN) with the suite; returns GE's
    result JSON and per-rule failing rows."""
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        _gx_suite(suite.feed), result_format={"result_format": "COMPLETE"}, expectation_parameters=suite_parameters()
    )
    by_name = {r.name: r for r in suite.rules}
    out = []
    for r in result.results:
        rule = by_name[r.expectation_config.meta["name"]]
        if r.exception_info and r.exception_info.get("raised_exception"):
            raise SuiteError(f"{suite.label} {rule.name}: {r.exception_info.get('exception_message')}")
        res = r.result or {}
        idx = np.asarray(res.get("unexpected_index_list") or [], dtype=np.int64)
        if not r.success and len(idx) == 0 and res.get("unexpected_count", 0):
            raise SuiteError(f"{suite.label} {rule.name}: GE returned no row indexes for the failing rows")
        observed = {k: res[k] for k in ("element_count", "unexpected_count", "unexpected_percent") if k in res}
        out.append(RuleResult(rule, bool(r.success), idx, observed))
    return result.to_json_dict(), out
