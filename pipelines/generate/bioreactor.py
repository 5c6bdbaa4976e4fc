"""Online bioreactor parameters at 1 min, written as the controller's wide CSV export.

File layout (docs/data.md has the full contract)::

    # instrument_id: BR-XURI-03
    # ... more '# key: value' metadata lines ...
    timestamp,temperature,ph,dissolved_oxygen,co2,rocking_rate,gas_flow,perfusion_rate,volume,quality
    ISO-8601,degC,pH,%sat,%,rpm,L/min,mL/day,mL,code
    2026-01-09T10:14:00Z,37.02,7.29,94.1,5.01,8,0.1,0,300,good

Everything is vectorised per batch with numpy; the body is written by pyarrow's CSV writer.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..sources import PARAM_UNITS
from .world import Expansion

# (column/param name, unit, decimals) in the controller's column order
_DECIMALS = {"temperature": 2, "ph": 2, "dissolved_oxygen": 1, "co2": 2, "rocking_rate": 0, "gas_flow": 3}
# (param, unit, decimals); the units are the registry's (pipelines.sources.PARAM_UNITS), in controller order.
PARAMS: tuple[tuple[str, str, int], ...] = tuple(
    (p, u, _DECIMALS.get(p, 0)) for p, u in PARAM_UNITS["bioreactor__readings"].items()
)
QUALITY_CODES = pa.array(["good", "uncertain", "bad"])  # the controller's quality vocabulary, by code index
PARAM_UNITS = {p: u for p, u, _ in PARAMS}
INSTRUMENT_MODEL = "Cytiva Xuri Cell Expansion System W25"
FIRMWARE = "2.4.1"


@dataclass
class ControllerOptions:
    """Per-file variations: the faults `faults.py` may ask for."""

    instrument_id: str | None = None  # override the metadata instrument id (unknown-instrument fault)
    timezone: str | None = None  # write local time with offsets in this IANA zone (valid; ingest converts)
    dropouts: list[tuple[str, int, int]] = field(default_factory=list)  # (param, first row, n rows) left blank
    units: dict[str, str] = field(default_factory=dict)  # param -> unit written in the units row (unit faults)


def simulate(exp: Expansion, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Minute timestamps (datetime64[s], UTC), values per param, and a quality code index per row."""
    rng = np.random.default_rng([seed, 2, exp.index])
    n = exp.minutes
    minute = np.arange(n)
    days = minute / 1440.0
    ts = np.datetime64(exp.start.tz_convert(None).to_datetime64(), "s") + minute.astype("timedelta64[m]")
    vcd = exp.vcd_at(days)
    load = np.minimum(vcd / 1.2e7, 1.0)

    # culture volume: seeded in 300 mL, fed to 600 mL on day 2 and 1000 mL on day 4 (30-min additions)
    volume = 300.0 + np.clip((days - 2.0) * 48, 0, 1) * 300 + np.clip((days - 4.0) * 48, 0, 1) * 400
    # perfusion starts above 2e6 cells/mL and steps up 250 mL/day per 2e6 cells/mL, to 1 L/day
    perfusion = np.minimum(np.floor(vcd / 2.0e6), 4) * 250.0
    rocking = np.where(days < 3, 8.0, np.where(vcd < 5e6, 12.0, 15.0))

    def walk(scale: float) -> np.ndarray:
        # slow sensor drift: a random walk pulled back to zero, cheap to vectorise via a smoothed cumsum
        steps = rng.normal(0, scale, n)
        w = np.cumsum(steps)
        return w - np.convolve(w, np.ones(240) / 240, mode="same")

    temperature = 37.0 + walk(0.004) + rng.normal(0, 0.02, n)
    for m in exp.sample_minutes:  # door opened for the daily sample: a dip that recovers in ~15 min
        k = np.arange(m, min(m + 30, n))
        temperature[k] -= 0.6 * np.exp(-(k - m) / 6.0)
    ph = 7.30 - 0.22 * load + walk(0.0008) + rng.normal(0, 0.008, n)
    do = np.clip(95.0 - 50.0 * load + walk(0.15) + rng.normal(0, 0.8, n), 5, 100)
    co2 = 5.0 + rng.normal(0, 0.02, n)
    gas = 0.1 + rng.normal(0, 0.0015, n)
    values = {
        "temperature": temperature,
        "ph": ph,
        "dissolved_oxygen": do,
        "co2": co2,
        "rocking_rate": rocking,
        "gas_flow": gas,
        "perfusion_rate": perfusion,
        "volume": volume,
    }
    for name, _unit, decimals in PARAMS:
        values[name] = np.round(values[name], decimals)
    quality = (rng.random(n) < 0.0005).astype(np.int8)  # index into QUALITY_CODES: 0 good, 1 uncertain
    return ts, values, quality


def _timestamps(ts: np.ndarray, timezone: str | None) -> pa.Array:
    """ISO 8601 text: '...Z' in UTC, or local wall time with its UTC offset ('+01:00') in ``timezone``
    (formatted by Arrow's C++ strftime, which follows the zone's DST rules)."""
    naive = pa.array(ts.astype("datetime64[s]"))
    if timezone is None:
        # Arrow's cast gives 'YYYY-MM-DD hh:mm:ss'; splice in 'T' and 'Z' (20x faster than strftime)
        text = naive.cast(pa.string())
        return pc.binary_replace_slice(pc.binary_replace_slice(text, 10, 11, "T"), 19, 19, "Z")
    utc = naive.cast(pa.timestamp("s", tz="UTC"))
    local = pc.strftime(utc.cast(pa.timestamp("s", tz=timezone)), format="%Y-%m-%dT%H:%M:%S%z")
    return pc.replace_substring_regex(local, pattern=r"([+-]\d\d)(\d\d)$", replacement=r"\1:\2")


def controller_csv(
    exp: Expansion, seed: int, export_at: pd.Timestamp, opts: ControllerOptions, serial: str
) -> tuple[bytes, int]:
    """The export's bytes and its data-row count."""
    ts, values, quality = simulate(exp, seed)
    n = len(ts)
    cols: dict[str, pa.Array] = {"timestamp": _timestamps(ts, opts.timezone)}
    for name, _unit, _dec in PARAMS:
        mask = np.zeros(n, dtype=bool)
        for param, first, count in opts.dropouts:
            if param == name:
                mask[first : first + count] = True
                quality[first : first + count] = 2  # bad
        cols[name] = pa.array(values[name], mask=mask)
    cols["quality"] = QUALITY_CODES.take(pa.array(quality))

    tz = opts.timezone or "UTC"
    export_local = _timestamps(np.array([export_at.tz_convert(None).to_datetime64()]), opts.timezone)[0].as_py()
    offset = "+00:00" if opts.timezone is None else cols["timestamp"][0].as_py()[-6:]
    meta = {
        "instrument_id": opts.instrument_id or exp.equipment_id,
        "instrument_model": INSTRUMENT_MODEL,
        "serial_number": serial,
        "firmware": FIRMWARE,
        "batch_id": exp.batch_id,
        "unit_operation": "expansion",
        "export_time": export_local,
        "timezone": tz,
        "utc_offset": offset,
        "sample_interval_s": "60",
        "record_count": str(n),
    }
    head = "".join(f"# {k}: {v}\n" for k, v in meta.items())
    head += ",".join(["timestamp", *[p for p, _, _ in PARAMS], "quality"]) + "\n"
    head += ",".join(["ISO-8601", *[opts.units.get(p, u) for p, u, _ in PARAMS], "code"]) + "\n"
    body = io.BytesIO()
    pacsv.write_csv(pa.table(cols), body, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return head.encode("utf-8") + body.getvalue(), n
