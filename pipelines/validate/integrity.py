"""Integrity checks a GMP reviewer expects, on a parsed raw file (ADR 0162). Classes of problems, not examples:

* **chain of identity** — where a feed's file-name convention names the batch, instrument or unit operation
  (``Feed.name_identity``, a regex with named groups) and the content names them too (controller metadata, or a
  column of every row), they must agree. A disagreement quarantines the whole file (``identity``): a file that
  contradicts itself about whose material it describes cannot be attributed to either.
* **units** — the unit a file declares for a parameter (the controller's units row, a ``unit`` column) must be
  the registry's (``pipelines.sources.PARAM_UNITS``; for QC results the unit of the attribute's release
  specification, ``dbt/seeds/qc_specifications.csv``) or one that ``CONVERSIONS`` converts; values are then
  converted to the registry's unit and the conversion is named in the outcome's reason. Any other unit
  quarantines the file (``units``): a mismatch is never accepted silently.
* **calibration** — a measurement taken by an instrument after its ``calibration_due_on`` (UTC date, the due day
  itself still valid) in the equipment registry is kept and flagged ``past_calibration_due``.

Truncation against a declared row count is checked where the count is declared (the controller's
``# record_count:``, in :mod:`pipelines.validate.readers`). ``check`` raises ``readers.Structural`` for a
whole-file problem, and otherwise returns what ``_finish_file`` applies: row flags and notes.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import numpy as np
import pandas as pd

from pipelines.sources import PARAM_UNITS, Feed
from pipelines.validate.readers import Parsed, Structural

CALIBRATION_FLAG = "past_calibration_due"

# How units are spelled differently for the same thing: normalised before comparing (lower case, no spaces).
UNIT_ALIASES = {
    "°c": "degc",
    "celsius": "degc",
    "°f": "degf",
    "fahrenheit": "degf",
    "%sat": "%sat",
    "%airsat": "%sat",
    "ml/d": "ml/day",
    "l/m": "l/min",
    "lpm": "l/min",
}

# (param or "*", from unit, registry unit) -> value in the registry's unit. The documented conversion table
# (docs/ingest.md "Units"): exact factors only; a unit not here is a quarantine, never a guess.
CONVERSIONS: dict[tuple[str, str, str], tuple[float, float]] = {
    # (factor, offset): registry = value * factor + offset
    ("*", "degf", "degc"): (5 / 9, -32 * 5 / 9),
    ("*", "k", "degc"): (1.0, -273.15),
    ("*", "ml/h", "ml/day"): (24.0, 0.0),
    ("*", "ml/min", "ml/day"): (1440.0, 0.0),
    ("*", "l/day", "ml/day"): (1000.0, 0.0),
    ("*", "ml/min", "l/min"): (0.001, 0.0),
    ("*", "l", "ml"): (1000.0, 0.0),
    ("*", "mg/dl", "g/l"): (0.01, 0.0),
    ("*", "mg/l", "g/l"): (0.001, 0.0),
    ("*", "10^6cells/ml", "cells/ml"): (1e6, 0.0),
    ("*", "e6cells/ml", "cells/ml"): (1e6, 0.0),
    ("*", "cells/l", "cells/ml"): (0.001, 0.0),
    ("*", "ng/ml", "pg/ml"): (1000.0, 0.0),
    ("glucose", "mmol/l", "g/l"): (180.156 / 1000, 0.0),
    ("lactate", "mmol/l", "g/l"): (90.078 / 1000, 0.0),
    ("glutamine", "g/l", "mmol/l"): (1000 / 146.146, 0.0),
}

# feed -> (instrument column, time column) for the calibration check ("" instrument: the file's constant).
CALIBRATION_COLUMNS = {
    "bioreactor__readings": ("equipment_id", "timestamp"),
    "analyzer__samples": ("instrument_id", "sampled_at"),
    "mes__process_steps": ("equipment_id", "started_at"),
}
# Content columns that carry identity, by the name_identity group they answer.
IDENTITY_COLUMNS = {"batch_id": "batch_id", "instrument_id": "instrument_id", "unit_op": "unit_op"}
CONTROLLER_IDENTITY = {"batch_id": "batch_id", "instrument_id": "equipment_id", "unit_op": "unit_op"}


@dataclass
class Findings:
    """What a file's integrity checks leave for the row policy: flags per name and notes for the reason."""

    flags: dict[str, np.ndarray] = field(default_factory=dict)  # name -> bool per frame row
    notes: list[str] = field(default_factory=list)


def norm_unit(unit: str | None) -> str:
    text = re.sub(r"\s+", "", str(unit or "")).lower()
    return UNIT_ALIASES.get(text, text)


def conversion(param: str, unit: str | None, expected: str) -> tuple[float, float] | None:
    """(factor, offset) that turns ``unit`` into ``expected`` for ``param``; (1, 0) when equal; None: unknown."""
    have, want = norm_unit(unit), norm_unit(expected)
    if have == want:
        return (1.0, 0.0)
    return CONVERSIONS.get((param, have, want)) or CONVERSIONS.get(("*", have, want))


@lru_cache
def calibration_due() -> dict[str, date]:
    """Equipment id -> calibration_due_on from the equipment registry (dbt/seeds/equipment.csv)."""
    from pipelines.validate.expectations import EQUIPMENT_SEED

    with EQUIPMENT_SEED.open(newline="") as fh:
        return {
            row["equipment_id"].strip(): date.fromisoformat(row["calibration_due_on"].strip())
            for row in csv.DictReader(fh)
            if row.get("equipment_id") and (row.get("calibration_due_on") or "").strip()
        }


def check(feed: Feed, file_name: str, parsed: Parsed) -> Findings:
    """Run every integrity check on one parsed file: raise ``Structural`` or return its findings."""
    findings = Findings()
    _identity(feed, file_name, parsed)
    _units(feed, parsed, findings)
    _calibration(feed, parsed, findings)
    return findings


def _identity(feed: Feed, file_name: str, parsed: Parsed) -> None:
    if not feed.name_identity:
        return
    match = re.fullmatch(feed.name_identity, file_name)
    if match is None:
        return  # the name does not follow the convention: it asserts nothing to compare
    for group, named in match.groupdict().items():
        if not named:
            continue
        if parsed.melt_params:
            said = {parsed.constants.get(CONTROLLER_IDENTITY[group])}
        else:
            column = IDENTITY_COLUMNS[group]
            if column not in parsed.frame.columns:
                continue
            said = set(parsed.frame[column].dropna().astype(str).unique())
        other = sorted(v for v in said if v is not None and v != named)
        if other:
            shown = ", ".join(other[:3]) + (" ..." if len(other) > 3 else "")
            raise Structural(
                "identity", f"the file name says {group} {named!r}, its content says {shown} (chain of identity)"
            )


@lru_cache
def spec_units() -> dict[str, str]:
    """QC attribute -> the unit its numeric release specifications use (dbt/seeds/qc_specifications.csv).

    Every version and product of an attribute must use one unit (a result's product is not known from its file);
    a seed that breaks this is a registry error, raised here rather than judged against one of them."""
    from pipelines.paths import SEEDS_DIR

    units: dict[str, set[str]] = {}
    with (SEEDS_DIR / "qc_specifications.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["result_type"].strip() == "numeric":
                units.setdefault(row["attribute"].strip(), set()).add(row["unit"].strip())
    mixed = {a: sorted(u) for a, u in units.items() if len(u) > 1}
    if mixed:
        raise ValueError(f"qc_specifications.csv: one unit per numeric attribute expected, found {mixed}")
    return {a: u.pop() for a, u in units.items()}


def expected_units(feed: Feed) -> dict[str, str]:
    """Parameter -> the unit the registry records it in, for the feeds whose rows declare a unit."""
    if feed.name in PARAM_UNITS:
        return PARAM_UNITS[feed.name]
    if feed.name == "lims__qc_results":
        return spec_units()
    return {}


# feed -> (parameter column, value column) of the feeds whose rows carry a ``unit`` column
UNIT_COLUMNS = {"analyzer__samples": ("param", "value"), "lims__qc_results": ("attribute", "result_value")}


def _units(feed: Feed, parsed: Parsed, findings: Findings) -> None:
    expected = expected_units(feed)
    if not expected:
        return
    if parsed.melt_params:  # the controller's units row: one unit per parameter column
        for param in parsed.melt_params:
            declared = parsed.units.get(param, "")
            conv = conversion(param, declared, expected[param])
            if conv is None:
                raise _unit_mismatch(param, declared, expected[param])
            if conv != (1.0, 0.0):
                parsed.frame[param] = parsed.frame[param] * conv[0] + conv[1]
                findings.notes.append(f"{param} converted from {declared} to {expected[param]}")
            parsed.units[param] = expected[param]
        return
    frame = parsed.frame
    param_col, value_col = UNIT_COLUMNS.get(feed.name, ("param", "value"))
    if "unit" not in frame.columns or param_col not in frame.columns or value_col not in frame.columns:
        return
    pairs = frame[[param_col, "unit"]].drop_duplicates()
    for param, declared in pairs.itertuples(index=False):
        if param not in expected:
            continue  # an unknown param is the suite's rule (param_unknown_value); pass/fail results have no unit
        conv = conversion(param, declared, expected[param])
        if conv is None:
            raise _unit_mismatch(param, declared, expected[param])
        if conv != (1.0, 0.0):
            rows = (frame[param_col] == param) & (frame["unit"].fillna("") == (declared or ""))
            _refuse_censored(frame, rows, param, declared, expected[param])
            frame.loc[rows, value_col] = frame.loc[rows, value_col] * conv[0] + conv[1]
            frame.loc[rows, "unit"] = expected[param]
            findings.notes.append(f"{int(rows.sum())} {param} values converted from {declared} to {expected[param]}")


def _refuse_censored(frame: pd.DataFrame, rows: pd.Series, param: str, declared: object, expected: str) -> None:
    """A censored result ('<0.05') in a unit to convert: its bound is text the marts compare with the limits in
    the registry's unit, and rewriting what the LIMS reported is not ours to do: quarantine, never mis-compare."""
    if "result_text" not in frame.columns:
        return
    censored = frame.loc[rows, "result_text"].fillna("").astype(str).str.strip().str.match(r"^[<>]")
    if censored.any():
        example = frame.loc[rows, "result_text"][censored].iloc[0]
        detail = f"{param} censored result {example!r} in {declared!r} cannot be compared with limits in {expected!r}"
        raise Structural("units", detail)


def _unit_mismatch(param: str, declared: object, expected: str) -> Structural:
    if declared is None or not str(declared).strip():
        return Structural("units", f"{param} has no unit, the registry expects {expected!r}")
    return Structural("units", f"{param} in {declared!r}, the registry expects {expected!r} (no documented conversion)")


def _calibration(feed: Feed, parsed: Parsed, findings: Findings) -> None:
    columns = CALIBRATION_COLUMNS.get(feed.name)
    if columns is None:
        return
    instrument_col, time_col = columns
    frame = parsed.frame
    if time_col not in frame.columns:
        return
    due = calibration_due()
    if parsed.melt_params:
        instruments = pd.Series(parsed.constants.get(instrument_col), index=frame.index)
    elif instrument_col in frame.columns:
        instruments = frame[instrument_col]
    else:
        return
    due_dates = pd.to_datetime(instruments.map(due), utc=False)
    taken = pd.to_datetime(frame[time_col], utc=True).dt.tz_localize(None).dt.normalize()
    past = (taken > due_dates).fillna(False).to_numpy(dtype=bool)
    if past.any():
        findings.flags[CALIBRATION_FLAG] = past
