"""A small, coherent CGT data set as validated landing Parquet, built for the transform tests.

Thirty CT-019 batches and four CT-BCMA batches with collections, steps, bioreactor readings, samples, QC results,
deviations, lots, shipments and infusions. Values are chosen so the marts have something to show: a shifted and
trending viability series (SPC rules), an OOS endotoxin, a positive sterility, censored values, a spec version
change (viability >= 70 until 2026-03-01, then >= 80), and a batch record exported twice (the later export wins).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipelines.sources import UNIT_OPERATIONS
from tests.transform.landing import write_query, write_rows, write_schema_files

BASE = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
STEPS = UNIT_OPERATIONS  # the MES process steps, in process order


def batch_ids(n: int = 34) -> list[str]:
    return [f"B{i:03d}" for i in range(1, n + 1)]


def viability_series(n: int = 30, seed: int = 7) -> list[float]:
    """In control for 20 points, then a step up (rule 2/5/6 material) and a rising run (rule 3)."""
    rng = random.Random(seed)
    values = [round(85 + rng.gauss(0, 1.5), 2) for _ in range(20)]
    values += [round(88 + rng.gauss(0, 0.5), 2) for _ in range(4)]
    values += [88.0, 88.6, 89.1, 89.9, 90.4, 91.2]  # 6 rising points
    return values[:n]


def write_dataset(
    lake_dir: Path, *, batches: int = 34, reactor_minutes: int = 120, params: tuple[str, ...] = ("temperature", "ph")
) -> dict[str, object]:
    """Write the landing Parquet under ``lake_dir``; returns facts the tests assert against.

    ``batches`` beyond 34 repeat the CT-019 pattern (for performance runs); ``reactor_minutes`` x ``params`` sets
    the size of the bioreactor feed (a real 10-day expansion is 14400 minutes x 8 parameters).
    """
    write_schema_files(lake_dir)
    rows: dict[str, list[dict]] = {
        name: []
        for name in (
            "apheresis__collections",
            "mes__batches",
            "mes__process_steps",
            "bioreactor__readings",
            "analyzer__samples",
            "lims__qc_results",
            "qms__deviations",
            "erp__material_lots",
            "logistics__shipments",
            "clinic__infusions",
        )
    }
    viability = viability_series()
    facts: dict[str, object] = {"viability": viability}
    ids = batch_ids(batches)
    reactor_starts = []
    for i, batch_id in enumerate(ids):
        product = "CT-BCMA" if 30 <= i < 34 else "CT-019"
        collected = BASE + timedelta(days=3 * i)
        received = collected + timedelta(hours=20)
        started = received + timedelta(hours=12)
        ended = started + timedelta(days=len(STEPS))
        in_process = i in (32, 33)
        disposition = "in_process" if in_process else ("rejected" if i == 4 else "released")
        din, coi = f"W0000 26 {i:06d}", f"COI-{i:04d}"
        rows["apheresis__collections"].append(
            dict(
                din=din,
                coi_id=coi,
                patient_id=f"P-{i:04d}",
                product_code=product,
                collection_site="AC-01",
                collected_at=collected,
                received_at=received,
                cd3_count=2.0e9,
                volume_ml=250.0,
            )
        )
        rows["mes__batches"].append(
            dict(
                batch_id=batch_id,
                coi_id=coi,
                din=din,
                product_code=product,
                site="MF-DE-01",
                process_version="PV-3.2",
                started_at=started,
                ended_at=None if in_process else ended,
                disposition=disposition,
                disposition_at=None if in_process else ended + timedelta(days=10),
            )
        )
        for seq, step in enumerate(STEPS, start=1):
            cells = {
                "selection": (1.0e9, 5.0e8),
                "expansion": (1.0e8, 5.0e9),
                "harvest": (5.0e9, 4.5e9),
                "formulation": (4.5e9, 4.0e9),
            }.get(step, (None, None))
            rows["mes__process_steps"].append(
                dict(
                    batch_id=batch_id,
                    step_seq=seq,
                    step_name=step,
                    started_at=started + timedelta(days=seq - 1),
                    ended_at=started + timedelta(days=seq - 1, hours=6),
                    operator_id="OP-1",
                    equipment_id="BR-XURI-01" if step == "expansion" else None,
                    material_lot_ids="LOT-1;LOT-2" if step == "transduction" else None,
                    viable_cells_in=cells[0],
                    viable_cells_out=cells[1],
                )
            )
        expansion_start = started + timedelta(days=4)
        reactor_starts.append((batch_id, expansion_start))
        rows["analyzer__samples"].append(
            dict(
                sample_id=f"IPC-{i:04d}",
                batch_id=batch_id,
                instrument_id="CC-NC200-01",
                sampled_at=expansion_start,
                culture_day=4,
                param="vcd",
                value=1.5e6,
                unit="cells/mL",
                analyst_id="AN-1",
            )
        )
        qc_day = ended + timedelta(days=1)
        qc = [
            ("VIA-NC200", "viability", f"{_viability(viability, i)}", _viability(viability, i), "%"),
            ("LAL-KIN", "endotoxin", "0.9" if i == 7 else "<0.05", 0.9 if i == 7 else None, "EU/mL"),
            ("STER-BACT", "sterility", "Positive" if i == 4 else "Negative", None, None),
        ]
        for test_code, attribute, text, value, unit in qc:
            rows["lims__qc_results"].append(
                dict(
                    sample_id=f"QC-{i:04d}",
                    batch_id=batch_id,
                    test_code=test_code,
                    attribute=attribute,
                    result_text=text,
                    result_value=value,
                    unit=unit,
                    sampled_at=qc_day,
                    tested_at=qc_day + timedelta(hours=30),
                    reviewed_at=qc_day + timedelta(hours=40),
                    analyst_id="AN-2",
                    method_version="1",
                )
            )
        rows["logistics__shipments"].append(
            dict(
                shipment_id=f"SH-IN-{i:04d}",
                coi_id=coi,
                batch_id=None,
                direction="inbound_apheresis",
                from_site="AC-01",
                to_site="MF-DE-01",
                shipped_at=collected + timedelta(hours=2),
                delivered_at=received,
                min_temp_c=2.0,
                max_temp_c=8.0,
                temperature_excursion=False,
            )
        )
        if disposition == "released":
            rows["clinic__infusions"].append(
                dict(
                    coi_id=coi,
                    batch_id=batch_id,
                    treatment_site="TC-01",
                    infused_at=ended + timedelta(days=14),
                    dose_cells=1.0e8,
                )
            )
    rows["qms__deviations"].append(
        dict(
            deviation_id="DEV-0001",
            batch_id="B005",
            opened_at=BASE + timedelta(days=20),
            closed_at=None,
            category="process",
            severity="major",
            description="Selection yield below target",
            capa_id="CAPA-1",
            capa_due_date=(BASE + timedelta(days=60)).date(),
            capa_closed_at=None,
        )
    )
    for lot in ("LOT-1", "LOT-2"):
        rows["erp__material_lots"].append(
            dict(
                material_lot_id=lot,
                material_code="LV-CD19",
                material_name="lentiviral vector",
                supplier="V-1",
                expiry_date=(BASE + timedelta(days=365)).date(),
                received_at=BASE - timedelta(days=30),
                status="released",
            )
        )
    first_ingest = datetime(2026, 6, 1, tzinfo=UTC)
    for feed, feed_rows in rows.items():
        write_rows(lake_dir, feed, feed_rows, ingested_at=first_ingest)
    # A later export of B033 (was in process) with its release: the later version must win in curated.
    b033 = dict(next(r for r in rows["mes__batches"] if r["batch_id"] == "B033"))
    b033.update(
        ended_at=b033["started_at"] + timedelta(days=9),
        disposition="released",
        disposition_at=b033["started_at"] + timedelta(days=19),
    )
    write_rows(lake_dir, "mes__batches", [b033], ingested_at=first_ingest + timedelta(days=1))
    _write_readings(lake_dir, reactor_starts, reactor_minutes, params, first_ingest)
    facts.update(batches=len(ids), readings_per_batch=reactor_minutes * len(params))
    return facts


def _viability(series: list[float], i: int) -> float:
    return series[i] if i < len(series) else 85.0


def _write_readings(lake_dir: Path, starts, minutes: int, params: tuple[str, ...], ingested_at: datetime) -> None:
    """1-minute readings for every batch's expansion, generated in DuckDB (millions of rows at full scale).
    Temperature cycles 37.0/37.1/37.2 degC and its 6th minute is quality 'bad'; other params are constant."""
    starts_sql = " union all ".join(
        f"select '{b}' as batch_id, '{t.isoformat()}'::timestamptz as t0" for b, t in starts
    )
    params_sql = ", ".join(f"'{p}'" for p in params)
    write_query(
        lake_dir,
        "bioreactor__readings",
        f"""select s.batch_id, 'expansion' as unit_op, 'BR-XURI-01' as equipment_id, p.param,
                s.t0 + m.minute * interval 1 minute as ts_utc,
                case when p.param = 'temperature' then 37.0 + (m.minute % 3) * 0.1 else 7.2 end as value,
                case when p.param = 'temperature' then 'degC' else 'pH' end as unit,
                case when p.param = 'temperature' and m.minute = 5 then 'bad' else 'good' end as quality
            from ({starts_sql}) s
            cross join (select unnest([{params_sql}]) as param) p
            cross join (select range as minute from range({minutes})) m""",
        ingested_at=ingested_at,
    )
