"""The fault catalog: what each injected fault is, how it is made, and what ingest must conclude.

docs/data.md renders the same catalog for people; `CATALOG` is the one place it is defined. Every fault the
generator injects is recorded in the truth file with the file, the kind and the expected outcome:

* ``accepted`` / ``accepted-with-flags`` — the file is valid; rows load (flagged rows carry ``_dq_flags``);
* ``rows-rejected`` — the file loads, the listed rows go to the rejected table;
* ``quarantined:<reason>`` — the whole file is quarantined (reason: unreadable | empty | encoding |
  schema_drift | unknown_instrument);
* ``duplicate`` — the same bytes were already landed under another name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..sources import FEEDS_BY_NAME
from .bioreactor import PARAMS, ControllerOptions
from .world import Expansion

# feeds whose loss leaves no dangling reference (nothing else points at their keys), so quarantining one of their
# files never breaks the relationships the dbt tests check
LEAF_CSV_FEEDS = ("mes__process_steps", "lims__qc_results", "qms__deviations", "clinic__infusions")


@dataclass(frozen=True)
class FaultKind:
    name: str
    feeds: tuple[str, ...]  # feeds whose files may receive it ("*" = any file, for new-file kinds)
    expected: str
    structural: bool  # structural kinds are guaranteed at least once whenever fault_rate > 0
    what: str
    how: str


# structural kinds first: faults are placed in this order, so scarce candidate files go to them
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


def apply(kind: str, f: OutFile, rng: np.random.Generator, nth: int) -> dict:
    """Mutate the planned file for one fault; return its truth entry (without id/file)."""
    detail: dict = {}
    if kind == "unknown_instrument":
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
