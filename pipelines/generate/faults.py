"""The fault catalog: what each injected fault is, how it is made, and what ingest must conclude.

docs/data.md renders the same catalog for people; `CATALOG` is the one place it is defined. Every fault the
generator injects is recorded in the truth file with the file, the kind and the expected outcome:

* ``accepted`` / ``accepted-with-flags`` — the file is valid; rows load (flagged rows carry ``_dq_flags``);
* ``rows-rejected`` — the file loads, the listed rows go to the rejected table;
* ``quarantined:<reason>`` — the whole file is quarantined (reason: unreadable | empty | encoding |
  schema_drift | unknown_instrument | identity | units | misfiled);
* ``duplicate`` — the same bytes were already landed under another name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..sources import FEEDS_BY_NAME
from .bioreactor import PARAMS, ControllerOptions
from .world import Expansion

# The spare cell counter of the equipment registry (status standby, so the simulation never uses it) whose
# calibration lapsed before the data set begins: what the calibration fault records measurements on.
LAPSED_COUNTER = "CC-NC200-03"
# Units no documented conversion reaches (pipelines/validate/integrity.py CONVERSIONS), per feed: (param, unit).
UNCONVERTIBLE_UNITS = {
    "bioreactor__readings": ("dissolved_oxygen", "mg/L"),  # needs temperature, pressure and salinity
    "analyzer__samples": ("vcd", "cells"),  # a total count: no volume to divide by
    "lims__qc_results": ("vcn", "copies/µg gDNA"),  # per mass of DNA: needs the genome mass per cell
}

# feeds whose loss leaves no dangling reference (nothing else points at their keys), so quarantining one of their
# files never breaks the relationships the dbt tests check
LEAF_CSV_FEEDS = ("mes__process_steps", "lims__qc_results", "qms__deviations", "clinic__infusions")
# the misfiled fault moves a file away: never the process steps, which at small scales are one file for every batch
MISFILED_FEEDS = ("lims__qc_results", "qms__deviations", "clinic__infusions")


@dataclass(frozen=True)
class FaultKind:
    name: str
    feeds: tuple[str, ...]  # feeds whose files may receive it ("*" = any file, for new-file kinds)
    expected: str
    structural: bool  # structural kinds are guaranteed at least once whenever fault_rate > 0
    what: str
    how: str


# structural kinds first: faults are placed in this order, so scarce candidate files go to them. The kinds of the
# integrity checks (ADR 0168) come last: in a small data set they take what is left, and the kinds before them are
# placed exactly as before they existed.
CATALOG: tuple[FaultKind, ...] = (
    FaultKind(
        "unknown_instrument",
        ("bioreactor__readings",),
        "quarantined:unknown_instrument",
        True,
        "A controller export from an instrument that is not in the equipment registry.",
        "The '# instrument_id:' metadata line and the file name name BR-XURI-9x (not in dbt/seeds/equipment.csv).",
    ),
    FaultKind(
        "local_timestamps",
        ("bioreactor__readings",),
        "accepted",
        True,
        "A controller set to local time: timestamps carry a UTC offset (valid data).",
        "Timestamps written as Europe/Berlin wall time with '+01:00'/'+02:00'; '# timezone:' and "
        "'# utc_offset:' say so. Ingest must convert to UTC; ts_utc equals the true instant.",
    ),
    FaultKind(
        "schema_drift",
        LEAF_CSV_FEEDS,
        "quarantined:schema_drift",
        True,
        "An export whose columns changed (software upgrade, report template edited).",
        "Either the header captions were renamed (e.g. 'result_text' -> 'Result Text') or one required "
        "column is missing and an unknown 'comments' column appears.",
    ),
    FaultKind(
        "wrong_encoding",
        LEAF_CSV_FEEDS,
        "quarantined:encoding",
        True,
        "A CSV saved in a legacy encoding, not UTF-8.",
        "First instance UTF-16 LE with BOM; further instances Latin-1 when the text has non-ASCII "
        "characters (e.g. '°C'), else UTF-16. Either way the bytes are invalid UTF-8.",
    ),
    FaultKind(
        "truncated_file",
        ("analyzer__samples", "logistics__shipments"),
        "quarantined:unreadable",
        True,
        "A transfer cut off mid-file.",
        "The file's bytes are cut to 40-70 % of their length (a Parquet file loses its footer, a JSON "
        "array its closing bracket).",
    ),
    FaultKind(
        "empty_file",
        LEAF_CSV_FEEDS,
        "quarantined:empty",
        True,
        "A zero-byte export (the source wrote nothing).",
        "An extra file '<stem>_part2.csv' of 0 bytes. Only ever one (two would be duplicates).",
    ),
    FaultKind(
        "duplicate_file",
        ("*",),
        "duplicate",
        True,
        "The same export delivered twice under another name.",
        "A byte-identical copy '<stem>_resent<ext>' of a clean file; it sorts after the original, so "
        "ingesting a directory in name order lands the original first.",
    ),
    FaultKind(
        "missing_value",
        ("bioreactor__readings", "analyzer__samples"),
        "accepted-with-flags",
        False,
        "Readings missing in a nullable value column (probe dropout, analyzer error).",
        "Bioreactor: blank cells for one parameter over a 5-45 min window, quality 'bad'. Analyzer: value "
        "null for 1-3 rows. Rows load with value NULL and a data-quality flag.",
    ),
    FaultKind(
        "missing_required_value",
        ("mes__process_steps", "lims__qc_results"),
        "rows-rejected",
        False,
        "A required (non-nullable) field left blank in a LIMS/MES export.",
        "operator_id (process steps) or analyst_id (QC results) blank in 1-2 rows; those rows are rejected "
        "with a reason, the rest of the file loads.",
    ),
    FaultKind(
        "impossible_value",
        ("analyzer__samples",),
        "rows-rejected",
        False,
        "A physically impossible in-process result (transcription/instrument error).",
        "viability above 100 % or a negative VCD in 1-2 rows; those rows are rejected.",
    ),
    FaultKind(
        "identity_mismatch",
        ("bioreactor__readings", "analyzer__samples"),
        "quarantined:identity",
        False,
        "A file whose name and content name different batches (chain of identity broken).",
        "Bioreactor: the file name carries another batch's id than its '# batch_id:' line (exported under "
        "another batch's name). Analyzer: the rows of one sampling day carry another batch's id than the file "
        "name (keyed against the wrong batch). The other batch exists in the data set.",
    ),
    FaultKind(
        "misfiled",
        MISFILED_FEEDS,
        "quarantined:misfiled",
        False,
        "An export delivered under another feed's path (a transfer job or an operator saving it in the wrong place).",
        "Variant 'wrong_folder': the file keeps its name in another system's folder (e.g. 'qms/qc_results_"
        "2026-02.csv'). Variant 'wrong_feed': it is written as another feed's file '<system>/<prefix><month>"
        "_export<n>.csv' with its own columns. Its own path is left without it.",
    ),
    FaultKind(
        "unknown_unit",
        tuple(UNCONVERTIBLE_UNITS),
        "quarantined:units",
        False,
        "A parameter reported in a unit the registry does not use and no documented conversion reaches.",
        "Bioreactor: dissolved_oxygen declared 'mg/L' in the units row. Analyzer: vcd rows in 'cells'. "
        "QC results: vcn rows in 'copies/µg gDNA'. Values unchanged (they cannot be converted).",
    ),
    FaultKind(
        "unit_converted",
        ("analyzer__samples",),
        "accepted",
        False,
        "An analyzer set to other units (mg/dL for metabolites): valid data in a documented convertible unit.",
        "glucose and lactate rows in 'mg/dL' (values x 100). Ingest converts them back to g/L (x 0.01) and says "
        "so in the outcome's reason; landing values equal the true ones.",
    ),
    FaultKind(
        "past_calibration",
        ("analyzer__samples",),
        "accepted-with-flags",
        False,
        "Measurements on an instrument whose calibration had lapsed on the day they were taken.",
        f"The cell-counter rows (vcd, viability) of one sampling day are measured on the spare counter "
        f"{LAPSED_COUNTER} (registry: calibration due 2025-12-20). Rows load, flagged past_calibration_due.",
    ),
)
KINDS = {k.name: k for k in CATALOG}
OOS_KIND = FaultKind(
    "oos_value",
    ("lims__qc_results",),
    "accepted",
    False,
    "A QC result outside its specification (a real event, not bad data).",
    "The batch's story: one CQA drawn out of spec under the spec version effective on the sample "
    "date; the batch is rejected or released by exception; a deviation is opened. Count: "
    "max(1, round(fault_rate * scale)) batches.",
)


@dataclass
class OutFile:
    """One file the generator writes, with the variations faults ask for."""

    relpath: str  # "<system>/<name>"
    feed: str
    frame: pd.DataFrame | None = None
    expansion: Expansion | None = None
    controller: ControllerOptions = field(default_factory=ControllerOptions)
    csv_opts: dict = field(default_factory=dict)
    truncate_to: float | None = None
    protected_rows: set[int] = field(default_factory=set)  # 0-based rows that faults must not touch (OOS)
    faults: list[dict] = field(default_factory=list)
    copy_of: OutFile | None = None  # a duplicate: written with this file's bytes
    copied: bool = False  # this file has a duplicate, so it must stay clean
    data: bytes = b""
    rows: int = 0
    rows_rejected: int = 0

    @property
    def expected(self) -> str:
        for f in self.faults:
            if f["expected_outcome"] != "accepted":
                return f["expected_outcome"]
        return "accepted"

    def with_name(self, name: str) -> str:
        return f"{self.relpath.split('/')[0]}/{name}"


def plan_counts(fault_rate: float, n_files: int) -> dict[str, int]:
    """How many files get each kind: the budget round(fault_rate * files), at least one of every kind."""
    if fault_rate <= 0:
        return {}
    counts = {k.name: 1 for k in CATALOG}
    extra = max(0, int(round(fault_rate * n_files)) - len(counts))
    growable = [k.name for k in CATALOG if k.name != "empty_file"]
    i = 0
    while extra > 0:
        counts[growable[i % len(growable)]] += 1
        extra -= 1
        i += 1
    return counts


def _pick_rows(rng: np.random.Generator, f: OutFile, k: int, mask: np.ndarray | None = None) -> list[int]:
    ok = np.ones(len(f.frame), dtype=bool) if mask is None else mask.copy()
    ok[list(f.protected_rows)] = False
    idx = np.flatnonzero(ok)
    return sorted(rng.choice(idx, size=min(k, len(idx)), replace=False).tolist())


def _one_day(rng: np.random.Generator, f: OutFile, params: tuple[str, ...] | None = None) -> list[int]:
    """0-based rows of one sampling day of an analyzer file (optionally only these params)."""
    days = sorted(f.frame.culture_day.unique())
    day = days[int(rng.integers(len(days)))]
    mask = (f.frame.culture_day == day).to_numpy()
    if params is not None:
        mask &= f.frame.param.isin(params).to_numpy()
    return np.flatnonzero(mask).tolist()


def apply(kind: str, f: OutFile, rng: np.random.Generator, nth: int, batch_ids: tuple[str, ...] = ()) -> dict:
    """Mutate the planned file for one fault; return its truth entry (without id/file).

    ``batch_ids``: every batch of the data set (the identity fault names another one that exists)."""
    detail: dict = {}
    if kind == "identity_mismatch":
        own = f.expansion.batch_id if f.expansion is not None else str(f.frame.batch_id.iloc[0])
        others = [b for b in batch_ids if b != own]
        other = others[int(rng.integers(len(others)))]
        detail.update(file_batch=own, other_batch=other)
        if f.expansion is not None:
            f.relpath = f.with_name(f.relpath.split("/")[1].replace(own, other))
            detail.update(variant="name", says="file name")
        else:
            rows = _one_day(rng, f)
            f.frame.loc[f.frame.index[rows], "batch_id"] = other
            detail.update(variant="rows", rows=[r + 1 for r in rows])
    elif kind == "unknown_unit":
        param, unit = UNCONVERTIBLE_UNITS[f.feed]
        detail.update(param=param, unit=unit)
        if f.expansion is not None:
            f.controller.units[param] = unit
        else:
            column = "param" if f.feed == "analyzer__samples" else "attribute"
            rows = np.flatnonzero((f.frame[column] == param).to_numpy()).tolist()
            f.frame.loc[f.frame.index[rows], "unit"] = unit
            detail["rows"] = [r + 1 for r in rows]
    elif kind == "misfiled":
        feed = FEEDS_BY_NAME[f.feed]
        others = [n for n in LEAF_CSV_FEEDS if FEEDS_BY_NAME[n].system != feed.system]
        other = FEEDS_BY_NAME[others[int(rng.integers(len(others)))]]
        name = f.relpath.split("/")[1]
        if nth % 2 == 0:
            filed_as = f"{other.system}/{name}"
            detail.update(variant="wrong_folder")
        else:
            month = name.rsplit("_", 1)[1].split(".")[0]
            filed_as = f"{other.system}/{other.pattern.split('*')[0]}{month}_export{nth + 1}.csv"
            detail.update(variant="wrong_feed", filed_as_feed=other.name)
        detail.update(belongs_at=f.relpath, filed_as=filed_as)
        f.relpath = filed_as
    elif kind == "unit_converted":
        rows = np.flatnonzero(f.frame.param.isin(["glucose", "lactate"]).to_numpy()).tolist()
        ix = f.frame.index[rows]
        detail.update(
            params=["glucose", "lactate"],
            unit="mg/dL",
            rows=[r + 1 for r in rows],
            registry_values=[float(v) for v in f.frame.loc[ix, "value"]],
        )
        f.frame.loc[ix, "value"] = (f.frame.loc[ix, "value"] * 100).round(6)
        f.frame.loc[ix, "unit"] = "mg/dL"
    elif kind == "past_calibration":
        rows = _one_day(rng, f, ("vcd", "viability"))
        detail.update(instrument_id=LAPSED_COUNTER, rows=[r + 1 for r in rows])
        f.frame.loc[f.frame.index[rows], "instrument_id"] = LAPSED_COUNTER
    elif kind == "unknown_instrument":
        bad = f"BR-XURI-{90 + nth}"
        detail["instrument_id"] = bad
        detail["registered_instrument_id"] = f.expansion.equipment_id
        f.controller.instrument_id = bad
        f.relpath = f.with_name(f.relpath.split("/")[1].replace(f.expansion.equipment_id, bad))
    elif kind == "local_timestamps":
        f.controller.timezone = "Europe/Berlin"
        detail["timezone"] = "Europe/Berlin"
        detail["first_ts_utc"] = f.expansion.start.strftime("%Y-%m-%dT%H:%M:%SZ")
    elif kind == "missing_value":
        if f.expansion is not None:
            windows = []
            for _ in range(int(rng.integers(1, 4))):
                param = PARAMS[int(rng.integers(len(PARAMS)))][0]
                first = int(rng.integers(0, f.expansion.minutes - 60))
                count = int(rng.integers(5, 46))
                f.controller.dropouts.append((param, first, count))
                windows.append({"param": param, "first_row": first + 1, "rows": count})
            detail["blank_windows"] = windows
        else:
            rows = _pick_rows(rng, f, int(rng.integers(1, 4)))
            f.frame.loc[f.frame.index[rows], "value"] = np.nan
            detail["rows"] = [r + 1 for r in rows]
            detail["column"] = "value"
    elif kind == "missing_required_value":
        col = "operator_id" if f.feed == "mes__process_steps" else "analyst_id"
        rows = _pick_rows(rng, f, int(rng.integers(1, 3)))
        f.frame.loc[f.frame.index[rows], col] = None
        detail.update(rows=[r + 1 for r in rows], column=col)
        f.rows_rejected += len(rows)
    elif kind == "impossible_value":
        mask = f.frame.param.isin(["viability", "vcd"]).to_numpy()
        rows = _pick_rows(rng, f, int(rng.integers(1, 3)), mask)
        for r in rows:
            ix = f.frame.index[r]
            if f.frame.at[ix, "param"] == "viability":
                f.frame.at[ix, "value"] = round(float(rng.uniform(101, 160)), 1)
            else:
                f.frame.at[ix, "value"] = -abs(float(f.frame.at[ix, "value"]))
        detail.update(rows=[r + 1 for r in rows], column="value")
        f.rows_rejected += len(rows)
    elif kind == "schema_drift":
        # a required column (never the first): a caption change or loss that no reader can shrug off
        cols = [c.name for c in FEEDS_BY_NAME[f.feed].columns[1:] if not c.nullable]
        col = cols[int(rng.integers(len(cols)))]
        if nth % 2 == 0:
            caption = col.replace("_", " ").title()
            f.csv_opts["rename"] = {col: caption}
            detail.update(variant="renamed", column=col, now=caption)
        else:
            f.csv_opts["drop"] = (col,)
            f.csv_opts["extra"] = {"comments": ""}
            detail.update(variant="missing+extra", missing=col, extra="comments")
    elif kind == "wrong_encoding":
        detail["nth"] = nth  # the encoding is chosen from the rendered text in finish_encoding()
    elif kind == "truncated_file":
        f.truncate_to = float(rng.uniform(0.4, 0.7))
        detail["kept_fraction"] = round(f.truncate_to, 3)
    return detail


def finish_encoding(f: OutFile, fault: dict) -> None:
    """Pick the legacy encoding once the text is known (Latin-1 only if it actually breaks UTF-8)."""
    text = f.data.decode("utf-8")
    enc = "utf-16"
    if fault["detail"].pop("nth") > 0 and not text.isascii():
        try:
            text.encode("latin-1")
            enc = "latin-1"
        except UnicodeEncodeError:
            pass
    f.data = text.encode(enc)
    fault["detail"]["encoding"] = enc
