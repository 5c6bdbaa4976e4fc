"""Table -> bytes, the way each source system exports (columns and types from the feed registry)."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..sources import ARROW_TYPES, Feed


def iso_timestamps(values: pd.Series, timezone: str | None = None) -> pd.Series:
    """ISO 8601 text: '2026-01-05T10:00:00Z' (UTC), or local time with offset '+01:00'; missing -> ''."""
    ts = pd.to_datetime(values, utc=True)
    if timezone is None:
        out = ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        local = ts.dt.tz_convert(timezone)
        raw = local.dt.strftime("%Y-%m-%dT%H:%M:%S%z")  # ...+0100
        out = raw.str[:-2] + ":" + raw.str[-2:]
    return out.fillna("")


def _text_frame(df: pd.DataFrame, feed: Feed, timezone: str | None) -> pd.DataFrame:
    """Every registry column rendered as the text a CSV/JSON export holds."""
    out = {}
    for col in feed.columns:
        s = df[col.name]
        if col.type == "TIMESTAMPTZ":
            out[col.name] = iso_timestamps(s, timezone)
        elif col.type == "DATE":
            out[col.name] = pd.to_datetime(s).dt.strftime("%Y-%m-%d").fillna("")
        elif col.type == "BOOLEAN":
            out[col.name] = s.map({True: "true", False: "false"}).fillna("")
        elif col.type == "BIGINT":
            out[col.name] = s.map(lambda v: "" if pd.isna(v) else str(int(v)))
        elif col.type == "DOUBLE":
            out[col.name] = s.map(lambda v: "" if pd.isna(v) else repr(float(v)).removesuffix(".0"))
        else:
            out[col.name] = s.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    return pd.DataFrame(out, index=df.index)


def to_csv(
    df: pd.DataFrame,
    feed: Feed,
    *,
    crlf: bool = False,
    timezone: str | None = None,
    rename: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
    extra: dict[str, str] | None = None,
    encoding: str = "utf-8",
) -> bytes:
    """A LIMS/MES-style CSV export: header row, one row per record, UTF-8 unless asked otherwise."""
    text = _text_frame(df, feed, timezone).drop(columns=list(drop))
    for name, value in (extra or {}).items():
        text[name] = value
    text = text.rename(columns=rename or {})
    buf = io.StringIO()
    text.to_csv(buf, index=False, lineterminator="\r\n" if crlf else "\n")
    return buf.getvalue().encode(encoding)


def to_parquet(df: pd.DataFrame, feed: Feed) -> bytes:
    """Parquet with the registry's types (timestamps UTC, microseconds); deterministic bytes for equal input."""
    schema = pa.schema([pa.field(c.name, ARROW_TYPES[c.type], nullable=c.nullable) for c in feed.columns])
    arrays = []
    for c in feed.columns:
        s = df[c.name]
        if c.type == "TIMESTAMPTZ":
            s = pd.to_datetime(s, utc=True)
        arrays.append(pa.array(s, type=ARROW_TYPES[c.type], from_pandas=True))
    table = pa.Table.from_arrays(arrays, schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def to_json(df: pd.DataFrame, feed: Feed) -> bytes:
    """A JSON array of records (the courier portal's export): ISO 8601 UTC times, null for missing."""
    text = _text_frame(df, feed, None)
    records = []
    for i in range(len(df)):
        rec = {}
        for c in feed.columns:
            v = text[c.name].iloc[i]
            if v == "":
                rec[c.name] = None
            elif c.type == "DOUBLE":
                rec[c.name] = float(v)
            elif c.type == "BIGINT":
                rec[c.name] = int(v)
            elif c.type == "BOOLEAN":
                rec[c.name] = v == "true"
            else:
                rec[c.name] = v
        records.append(rec)
    return (json.dumps(records, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
