"""Small landing files covering every fault kind ingest must handle (independent of the generator)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.settings import Settings
from pipelines.sources import PARAM_UNITS

QC_HEADER = (
    "sample_id,batch_id,test_code,attribute,result_text,result_value,unit,sampled_at,tested_at,reviewed_at,"
    "analyst_id,method_version"
)
QC_ROWS = [
    "S-1,B-1,T-VIA,viability,91.2,91.2,%,2026-01-05T10:00:00Z,2026-01-06T10:00:00Z,,AN-1,v1",
    "S-1,B-1,T-END,endotoxin,<0.05,,EU/mL,2026-01-05T10:00:00Z,2026-01-06T11:00:00Z,,AN-2,v1",
    "S-2,B-2,T-VIA,viability,88.0,88.0,%,2026-01-05T09:00:00+01:00,2026-01-06T10:00:00Z,,,v1",  # analyst missing
]
BR_META = {
    "instrument_id": "BR-XURI-01",
    "batch_id": "B-1",
    "unit_operation": "expansion",
    "timezone": "Europe/Berlin",
    "utc_offset": "+01:00",
}
BR_PARAMS = "temperature,ph,dissolved_oxygen,co2,rocking_rate,gas_flow,perfusion_rate,volume"
BR_UNITS = "ISO-8601,degC,pH,%sat,%,rpm,L/min,mL/day,mL,code"


def controller(rows: list[str], **meta_over: str) -> bytes:
    meta = {**BR_META, "record_count": str(len(rows)), **meta_over}
    head = "".join(f"# {k}: {v}\n" for k, v in meta.items())
    return (head + f"timestamp,{BR_PARAMS},quality\n{BR_UNITS}\n" + "".join(r + "\n" for r in rows)).encode()


BR_ROWS = [
    "2026-01-09T11:00:00+01:00,37.02,7.29,94.1,5.01,8,0.1,0,300,good",
    "2026-01-09T11:01:00+01:00,37.01,,94.0,5.00,8,0.1,0,300,bad",  # ph dropout -> flagged
    "2026-01-09T11:02:00+01:00,37.00,7.28,93.9,5.02,8,0.1,0,300,good",
]


def analyzer_parquet(rows: list[dict]) -> bytes:
    schema = pa.schema(
        [
            ("sample_id", pa.string()),
            ("batch_id", pa.string()),
            ("instrument_id", pa.string()),
            ("sampled_at", pa.timestamp("us", tz="UTC")),
            ("culture_day", pa.int64()),
            ("param", pa.string()),
            ("value", pa.float64()),
            ("unit", pa.string()),
            ("analyst_id", pa.string()),
        ]
    )
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf, compression="zstd")
    return buf.getvalue()


def _sample(sid: str, param: str, value: float | None, instrument: str = "CC-NC200-01") -> dict:
    from datetime import UTC, datetime

    return {
        "sample_id": sid,
        "batch_id": "B-1",
        "instrument_id": instrument,
        "sampled_at": datetime(2026, 1, 10, 8, tzinfo=UTC),
        "culture_day": 3,
        "param": param,
        "value": value,
        "unit": PARAM_UNITS["analyzer__samples"].get(param, "%"),  # the registry's unit (ADR 0162)
        "analyst_id": "AN-1",
    }


# file -> (bytes, expected outcome, expected reason kind or None)
def fixture_files() -> dict[str, tuple[bytes, str, str | None]]:
    qc = (QC_HEADER + "\n" + "\n".join(QC_ROWS) + "\n").encode()
    shipments = json.dumps(
        [
            {
                "shipment_id": "SH-1",
                "coi_id": "C-1",
                "batch_id": None,
                "direction": "inbound_apheresis",
                "from_site": "A",
                "to_site": "B",
                "shipped_at": "2026-01-02T08:00:00Z",
                "delivered_at": "2026-01-02T20:00:00Z",
                "min_temp_c": 2.0,
                "max_temp_c": 8.0,
                "temperature_excursion": False,
            }
        ]
    ).encode()
    latin1 = (QC_HEADER + "\n" + QC_ROWS[0].replace("AN-1", "Müller") + "\n").encode("latin-1")
    return {
        "lims/qc_results_2026-01.csv": (qc, "accepted", None),
        "lims/qc_results_2026-01_resent.csv": (qc, "duplicate", None),
        "lims/qc_results_2026-02.csv": (b"", "quarantined", "empty"),
        "lims/qc_results_2026-03.csv": (qc.decode().encode("utf-16"), "quarantined", "encoding"),
        "lims/qc_results_2026-04.csv": (latin1, "quarantined", "encoding"),
        "lims/qc_results_2026-05.csv": (
            qc.decode().replace("result_text", "Result Text").encode(),
            "quarantined",
            "schema_drift",
        ),
        "lims/qc_results_2026-06.csv": (
            (QC_HEADER + "\n" + QC_ROWS[0].replace("Z,", ",") + "\n").encode(),
            "quarantined",
            "schema_drift",  # timestamps without a UTC offset
        ),
        "bioreactor/BR-XURI-01_B-1_expansion.csv": (controller(BR_ROWS), "accepted", None),
        "bioreactor/BR-XURI-99_B-2_expansion.csv": (
            controller(BR_ROWS, instrument_id="BR-XURI-99"),
            "quarantined",
            "unknown_instrument",
        ),
        "bioreactor/BR-XURI-02_B-3_expansion.csv": (
            controller(BR_ROWS, instrument_id="BR-XURI-02", record_count="20160"),
            "quarantined",
            "unreadable",  # truncated: fewer rows than record_count
        ),
        "analyzer/samples_B-1.parquet": (
            analyzer_parquet(
                [
                    _sample("SM-1", "viability", 92.0),
                    _sample("SM-1", "vcd", None),  # missing -> flagged
                    _sample("SM-2", "viability", 140.0),  # impossible -> rejected
                    _sample("SM-3", "viability", 90.0, instrument="CC-XX-99"),  # unknown instrument -> rejected
                ]
            ),
            "accepted",
            None,
        ),
        "analyzer/samples_B-2.parquet": (
            analyzer_parquet([_sample("SM-9", "vcd", 1.0)])[:300],
            "quarantined",
            "unreadable",
        ),
        "logistics/shipments_2026-01.json": (shipments, "accepted", None),
        "logistics/shipments_2026-02.json": (shipments[: len(shipments) // 2], "quarantined", "unreadable"),
        "unknown/whatever.txt": (b"hello\n", "quarantined", "unknown_feed"),
    }


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    for rel, (data, _o, _r) in fixture_files().items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


@pytest.fixture
def local_settings(tmp_path: Path, landing: Path) -> Settings:
    return Settings(home=tmp_path / "home", landing_dir=landing)
