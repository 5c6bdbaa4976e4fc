"""Read a raw file into a typed DataFrame per its feed's format, or say why the whole file is unusable.

Structural failures raise :class:`Structural` with a reason kind (what ``file_outcomes.reason_kind`` holds):

| kind | when |
|---|---|
| ``empty`` | zero bytes (or only whitespace) |
| ``encoding`` | not UTF-8: UTF-16 byte-order mark, NUL bytes, or bytes invalid in UTF-8 (Latin-1, ...) |
| ``unreadable`` | cannot be parsed: CSV rows with a wrong field count, truncated/corrupt Parquet or JSON, |
|  | fewer data rows than the controller's ``record_count`` says (truncated) |
| ``schema_drift`` | columns missing/unexpected/renamed; controller metadata incomplete; naive timestamps |
| ``unknown_instrument`` | a controller export from an instrument not in dbt/seeds/equipment.csv |
| ``misfiled`` | the columns are exactly another feed's, or (decided by the caller) no feed of the file's |
|  | folder claims its name but another system's feed would: delivered under the wrong path |
| ``unknown_feed`` | no feed in pipelines/sources.py claims the file (decided by the caller) |

Values that do not parse as their column's type (``'abc'`` in a DOUBLE column; any number that is not finite:
``inf``, ``NaN``, ``#N/A``, a stored NaN in Parquet; spreadsheet spellings such as ``1,234.5`` or ``82.1%``) are
not structural: the value becomes NULL and the row is rejected with ``<column>_unparseable``
(``Parsed.coerce_errors``). A CSV header delimited by ';', tab or '|' is ``schema_drift`` (named so); the header
repeated as a data row (exports concatenated) is ``unreadable``; quoted fields may span lines.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines.ingest import controller_metadata
from pipelines.sources import Feed

CONTROLLER_REQUIRED_META = ("instrument_id", "batch_id", "unit_operation")
CONTROLLER_PARAMS = (
    "temperature",
    "ph",
    "dissolved_oxygen",
    "co2",
    "rocking_rate",
    "gas_flow",
    "perfusion_rate",
    "volume",
)
_OFFSET = r"(?:Z|z|[+-]\d{2}(?::?\d{2})?)$"


class Structural(Exception):
    """The whole file is unusable; ``kind`` is the reason kind, ``detail`` the one-line explanation."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass
class Parsed:
    """A raw file as a typed frame (what the expectation suite runs on), one row per data row of the file.

    For the controller export the frame is the wide table as delivered (timestamp, one column per parameter,
    quality); ``melt_params`` lists the parameter columns and ``constants`` the per-file values (batch, unit op,
    instrument) that become columns when it is melted to the long landing format.
    """

    frame: pd.DataFrame
    source_rows: np.ndarray  # 1-based data row number in the raw file, per frame row
    coerce_errors: dict[str, np.ndarray] = field(default_factory=dict)  # column -> rows whose text did not parse
    melt_params: tuple[str, ...] = ()
    constants: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    # Set by the integrity checks (pipelines/validate/integrity.py): flags per name (bool per frame row; a melted
    # file's flag applies to every parameter of the row) and notes for the outcome's reason (unit conversions).
    flags: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def decode(data: bytes) -> str:
    """The bytes as UTF-8 text (a UTF-8 BOM is dropped), or Structural(empty|encoding)."""
    if not data.strip():
        raise Structural("empty", "the file has no content" if not data else "the file holds only whitespace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Structural("encoding", "UTF-16 (byte-order mark found); exports must be UTF-8")
    if b"\x00" in data[:4096]:
        raise Structural("encoding", "NUL bytes found (UTF-16/32 without byte-order mark?); exports must be UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise Structural(
            "encoding", f"not valid UTF-8 (byte 0x{bad} at offset {exc.start}; Latin-1/Windows-1252?)"
        ) from None


def check_columns(found: list[str], feed: Feed, where: str = "columns") -> None:
    """The file's columns must be the feed's (any order); else ``misfiled`` when they are exactly another feed's
    of the same format (an export delivered under the wrong feed's path), otherwise ``schema_drift``."""
    expected = feed.column_names
    dupes = sorted({c for c in found if found.count(c) > 1})
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    if dupes or missing or extra:
        from pipelines.sources import FEEDS

        for other in FEEDS:
            if other.name != feed.name and other.format == feed.format and set(other.column_names) == set(found):
                raise Structural(
                    "misfiled",
                    f"the {where} is feed {other.name}'s ({other.system}/{other.pattern}), not {feed.name}'s: "
                    "delivered under the wrong feed's path",
                )
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if extra:
            parts.append("unexpected " + ", ".join(repr(c) for c in extra))
        if dupes:
            parts.append("repeated " + ", ".join(dupes))
        raise Structural("schema_drift", f"{where}: " + "; ".join(parts))


def _read_csv_text(body: bytes, names: list[str]) -> pd.DataFrame:
    """CSV body (no header) -> all-string DataFrame ('' for empty fields), vectorised by pyarrow. A header-only
    export (nothing to report) is a frame without rows."""
    if not body.strip():
        return pd.DataFrame({n: pd.Series([], dtype=object) for n in names})
    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),  # QMS/LIMS text fields span lines
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException) as exc:
        first = str(exc).splitlines()[0]
        raise Structural("unreadable", f"CSV cannot be parsed ({first}): truncated or corrupt?") from None
    return table.to_pandas()


def _first_line_end(data: bytes, start: int) -> int:
    end = data.find(b"\n", start)
    return len(data) if end < 0 else end + 1


def _header(line: bytes) -> list[str]:
    text = line.decode("utf-8-sig").rstrip("\r\n")
    return [c.strip() for c in next(csv.reader([text]))] if text else []


# --- coercion from text -------------------------------------------------------------------------------


def parse_timestamps(text: pd.Series, column: str) -> tuple[pd.Series, np.ndarray]:
    """ISO 8601 text with offsets -> UTC timestamps. Naive values (no offset) are schema drift: we never guess a
    zone. Returns (values, rows that did not parse)."""
    present = text.str.len().to_numpy() > 0
    if present.any():
        has_offset = text.str.contains(_OFFSET, regex=True).to_numpy()
        naive = present & ~has_offset
        if naive.any():
            example = text[naive].iloc[0]
            raise Structural("schema_drift", f"column {column}: timestamps without a UTC offset (e.g. {example!r})")
    values = pd.to_datetime(text.where(present), utc=True, format="ISO8601", errors="coerce")
    return values, present & values.isna().to_numpy()


def _numbers(text: pd.Series) -> pd.Series:
    """Text -> float; anything but a finite number (``inf``, ``NaN``, ``1e400``, ``#N/A``, ``1,234.5``) is NaN, so
    the caller rejects it as unparseable rather than loading an infinity or guessing a locale."""
    values = pd.to_numeric(text, errors="coerce").astype("float64")
    return values.where(np.isfinite(values.to_numpy()))


def coerce(text: pd.DataFrame, feed_columns) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """All-string frame -> typed frame per the registry; '' is NULL; unparseable text -> NULL + error mask."""
    out: dict[str, object] = {}
    errors: dict[str, np.ndarray] = {}
    for col in feed_columns:
        s = text[col.name].fillna("").astype(str).str.strip()
        present = (s.str.len() > 0).to_numpy()
        if col.type == "TIMESTAMPTZ":
            values, bad = parse_timestamps(s, col.name)
        elif col.type in ("DOUBLE", "BIGINT"):
            values = _numbers(s.where(present))
            bad = present & values.isna().to_numpy()
            if col.type == "BIGINT":
                frac = values.notna().to_numpy() & (values.fillna(0) % 1 != 0).to_numpy()
                bad |= frac
                values = values.where(~frac).astype("Int64")
            else:
                values = values.astype("float64")
        elif col.type == "BOOLEAN":
            low = s.str.lower()
            values = low.map({"true": True, "false": False}).astype("boolean")
            bad = present & values.isna().to_numpy()
        elif col.type == "DATE":
            values = pd.to_datetime(s.where(present), format="%Y-%m-%d", errors="coerce").dt.date
            bad = present & pd.isna(values).to_numpy()
            values = values.astype(object).where(~pd.isna(values), None)
        else:
            values = s.where(present, None).astype(object)
            bad = np.zeros(len(s), dtype=bool)
        out[col.name] = values
        if bad.any():
            errors[col.name] = bad
    return pd.DataFrame(out, index=text.index), errors


# --- formats ----------------------------------------------------------------------------------------


def read_csv(data: bytes, feed: Feed) -> Parsed:
    decode(data)  # encoding/empty checks on the whole file
    end = _first_line_end(data, 0)
    names = _header(data[:end])
    _check_delimiter(names, feed)
    check_columns(names, feed, "header")
    text = _read_csv_text(data[end:], names)
    repeated = np.flatnonzero(np.logical_and.reduce([(text[c].str.strip() == c).to_numpy() for c in names]))
    if len(repeated):
        raise Structural(
            "unreadable", f"the header repeats as data row {repeated[0] + 1}: exports concatenated into one file?"
        )
    frame, errors = coerce(text, feed.columns)
    return Parsed(frame, np.arange(1, len(frame) + 1), errors)


def _check_delimiter(names: list[str], feed: Feed) -> None:
    """A header that is one field holding the feed's columns joined by ';', tab or '|': another delimiter (a
    spreadsheet's regional CSV, often with decimal commas). Named as such, never re-parsed by guess."""
    if len(names) != 1:
        return
    for sep, label in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
        if set(c.strip() for c in names[0].split(sep)) == set(feed.column_names):
            raise Structural(
                "schema_drift", f"the header is delimited by {label}, not ','; exports must be comma-separated"
            )


def read_json(data: bytes, feed: Feed) -> Parsed:
    text = decode(data)
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Structural(
            "unreadable", f"invalid JSON ({exc.msg} at line {exc.lineno}): truncated or corrupt?"
        ) from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise Structural("schema_drift", "expected a JSON array of objects")
    keys: list[str] = []
    for r in records:
        keys += [k for k in r if k not in keys]
    if records:
        check_columns(keys, feed, "keys")

    def as_text(v: object) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v)

    frame_text = pd.DataFrame({c: [as_text(r.get(c)) for r in records] for c in feed.column_names})
    frame, errors = coerce(frame_text, feed.columns)
    return Parsed(frame, np.arange(1, len(frame) + 1), errors)


def read_parquet(data: bytes, feed: Feed) -> Parsed:
    if not data:
        raise Structural("empty", "the file has no content")
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        first = str(exc).splitlines()[0]
        raise Structural("unreadable", f"Parquet cannot be read ({first}): truncated or corrupt?") from None
    check_columns(table.column_names, feed)
    out: dict[str, object] = {}
    errors: dict[str, np.ndarray] = {}
    for col in feed.columns:
        arr = table.column(col.name)
        if col.type == "TIMESTAMPTZ":
            if not pa.types.is_timestamp(arr.type) or arr.type.tz is None:
                raise Structural("schema_drift", f"column {col.name} is {arr.type}, expected timestamp with time zone")
            out[col.name] = arr.to_pandas().dt.tz_convert("UTC")
            continue
        try:
            if col.type == "DOUBLE":
                values = arr.cast(pa.float64()).to_numpy(zero_copy_only=False)  # nulls become NaN here
                nonfinite = np.asarray(arr.is_valid()) & ~np.isfinite(values)  # a stored NaN or infinity
                if nonfinite.any():
                    errors[col.name] = nonfinite
                out[col.name] = pd.Series(np.where(nonfinite, np.nan, values))
            elif col.type == "BIGINT":
                out[col.name] = arr.cast(pa.int64()).to_pandas().astype("Int64")
            elif col.type == "BOOLEAN":
                out[col.name] = arr.cast(pa.bool_()).to_pandas().astype("boolean")
            elif col.type == "DATE":
                out[col.name] = arr.cast(pa.date32()).to_pandas()
            else:
                if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
                    raise pa.ArrowInvalid("not text")
                out[col.name] = arr.to_pandas().astype(object)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise Structural("schema_drift", f"column {col.name} is {arr.type}, expected {col.type}") from None
    frame = pd.DataFrame(out)
    return Parsed(frame, np.arange(1, len(frame) + 1), errors)


def read_controller_csv(data: bytes, feed: Feed, equipment_ids: frozenset[str]) -> Parsed:
    """The bioreactor controller's export: '# key: value' lines, header, units row, one row per minute."""
    decode(data)
    pos = 0
    while pos < len(data) and data[pos : pos + 1] == b"#":
        pos = _first_line_end(data, pos)
    meta = controller_metadata(data[:pos])
    missing = [k for k in CONTROLLER_REQUIRED_META if not meta.get(k)]
    if missing:
        raise Structural("schema_drift", "controller metadata lacks " + ", ".join(f"'# {k}:'" for k in missing))
    if meta["instrument_id"] not in equipment_ids:
        raise Structural("unknown_instrument", f"instrument {meta['instrument_id']!r} is not in the equipment registry")
    header_end = _first_line_end(data, pos)
    names = _header(data[pos:header_end])
    params = [c for c in names if c not in ("timestamp", "quality")]
    unknown = [c for c in params if c not in CONTROLLER_PARAMS]
    absent = [p for p in CONTROLLER_PARAMS if p not in params]
    if "timestamp" not in names or "quality" not in names or unknown or absent or len(set(names)) != len(names):
        raise Structural(
            "schema_drift",
            f"controller header {names!r}: needs timestamp, quality and known parameters"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
            + (f" (missing: {', '.join(absent)})" if absent else ""),
        )
    units_end = _first_line_end(data, header_end)
    units_row = _header(data[header_end:units_end])
    if len(units_row) != len(names):
        raise Structural("schema_drift", "controller units row does not match the header")
    units = dict(zip(names, units_row, strict=True))
    frame, errors = _controller_body(data[units_end:], names, params)
    expected_rows = meta.get("record_count")
    if expected_rows and expected_rows.isdigit() and int(expected_rows) != len(frame):
        raise Structural(
            "unreadable", f"truncated: {len(frame)} data rows, the controller's record_count says {expected_rows}"
        )
    constants = {
        "batch_id": meta["batch_id"],
        "unit_op": meta["unit_operation"],
        "equipment_id": meta["instrument_id"],
    }
    return Parsed(frame, np.arange(1, len(frame) + 1), errors, tuple(params), constants, units)


def _controller_body(body: bytes, names: list[str], params: list[str]) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The minute rows, typed. Fast path: pyarrow parses numbers and ISO 8601 offsets in C++; any value it cannot
    parse (text in a number column, a naive timestamp) sends the file down the slower row-exact path instead."""
    types = {n: pa.string() for n in ("timestamp", "quality")} | {p: pa.float64() for p in params}
    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
            # only an empty field is a missing value: '#N/A', 'NaN', 'null' go down the exact path and are rejected
            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True, null_values=[""]),
        )
        ts = pc.cast(pc.utf8_trim_whitespace(table.column("timestamp")), pa.timestamp("us", tz="UTC"))
        if ts.null_count:
            raise pa.ArrowInvalid("missing timestamps")
        if any(pc.any(pc.invert(pc.is_finite(table.column(p)))).as_py() for p in params):
            raise pa.ArrowInvalid("values that are not finite numbers (inf, NaN)")
    except (pa.ArrowInvalid, pa.ArrowException):
        return _controller_body_exact(body, names, params)
    frame = table.to_pandas()
    frame["timestamp"] = ts.to_pandas()
    frame["quality"] = frame["quality"].astype(object)
    return frame[["timestamp", *params, "quality"]], {}


def _controller_body_exact(body: bytes, names: list[str], params: list[str]) -> tuple[pd.DataFrame, dict]:
    text = _read_csv_text(body, names)
    ts, ts_bad = parse_timestamps(text["timestamp"].str.strip(), "timestamp")
    frame = {"timestamp": ts}
    errors: dict[str, np.ndarray] = {}
    if ts_bad.any():
        errors["timestamp"] = ts_bad
    for p in params:
        s = text[p].str.strip()
        present = (s.str.len() > 0).to_numpy()
        values = _numbers(s.where(present))
        bad = present & values.isna().to_numpy()
        if bad.any():
            errors[p] = bad
        frame[p] = values
    frame["quality"] = text["quality"].str.strip().where(text["quality"].str.len() > 0, None).astype(object)
    return pd.DataFrame(frame), errors


def read(data: bytes, feed: Feed, equipment_ids: frozenset[str]) -> Parsed:
    if feed.format == "csv":
        return read_csv(data, feed)
    if feed.format == "controller_csv":
        return read_controller_csv(data, feed, equipment_ids)
    if feed.format == "parquet":
        return read_parquet(data, feed)
    if feed.format == "json":
        return read_json(data, feed)
    raise ValueError(f"no reader for format {feed.format!r}")
