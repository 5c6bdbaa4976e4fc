"""Integrity checks (ADR 0162), each case through the real land -> validate path: chain of identity, units vs the
registry, instrument calibration, duplicates only of an accepted delivery of the same feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines import control
from pipelines.ingest import land
from pipelines.settings import Settings
from pipelines.validate import expectations, integrity, validate_pending

from .conftest import BR_ROWS, BR_UNITS, QC_HEADER, _sample, analyzer_parquet, controller


def _outcome(settings: Settings, rel: str) -> dict:
    for f in control.file_outcomes(control.engine(settings)):
        if f"{f['source_system']}/{f['file']}" == rel:
            last = f
    return last


def _deliver(settings: Settings, files: dict[str, bytes], run: str = "run-1") -> None:
    paths = []
    for rel, data in files.items():
        p = Path(settings.landing_dir) / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        paths.append(p)
    land(settings, paths, run)
    validate_pending(settings, run)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", landing_dir=tmp_path / "landing", landing_settle_seconds=0)


def _landing_rows(settings: Settings, rel: str) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(_outcome(settings, rel)["landing_uri"]).to_pylist()


# --- chain of identity ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "meta", "says"),
    [
        ("BR-XURI-01_B-9_expansion.csv", {}, "batch_id 'B-9', its content says B-1"),
        ("BR-XURI-02_B-1_expansion.csv", {}, "instrument_id 'BR-XURI-02', its content says BR-XURI-01"),
        ("BR-XURI-01_B-1_harvest.csv", {}, "unit_op 'harvest', its content says expansion"),
    ],
)
def test_controller_name_and_metadata_must_agree(settings, name, meta, says):
    _deliver(settings, {f"bioreactor/{name}": controller(BR_ROWS, **meta)})
    got = _outcome(settings, f"bioreactor/{name}")
    assert (got["outcome"], got["reason_kind"]) == ("quarantined", "identity")
    assert says in got["reason"]


def test_analyzer_rows_must_belong_to_the_batch_the_file_names(settings):
    rows = [_sample("SM-1", "viability", 92.0), {**_sample("SM-2", "viability", 91.0), "batch_id": "B-2"}]
    _deliver(settings, {"analyzer/samples_B-1.parquet": analyzer_parquet(rows)})
    got = _outcome(settings, "analyzer/samples_B-1.parquet")
    assert (got["outcome"], got["reason_kind"]) == ("quarantined", "identity")
    assert "batch_id 'B-1', its content says B-2" in got["reason"]


def test_a_name_outside_the_convention_asserts_nothing(settings):
    _deliver(settings, {"bioreactor/export 2026-01-09.csv": controller(BR_ROWS)})
    assert _outcome(settings, "bioreactor/export 2026-01-09.csv")["outcome"] == "accepted"


# --- units ----------------------------------------------------------------------------------------------------


def _with_units(rows: list[str], **units: str) -> bytes:
    names = ["timestamp", *integrity.PARAM_UNITS["bioreactor__readings"], "quality"]
    declared = dict(zip(names, BR_UNITS.split(","), strict=True)) | units
    return controller(rows).replace(BR_UNITS.encode(), ",".join(declared[n] for n in names).encode())


def test_a_known_unit_is_converted_to_the_registry_unit(settings):
    rows = [r.replace("37.02", "98.6").replace("37.01", "98.6").replace("37.00", "98.6") for r in BR_ROWS]
    _deliver(settings, {"bioreactor/BR-XURI-01_B-1_expansion.csv": _with_units(rows, temperature="°F")})
    got = _outcome(settings, "bioreactor/BR-XURI-01_B-1_expansion.csv")
    assert got["outcome"] == "accepted" and "temperature converted from °F to degC" in got["reason"]
    temps = [
        r for r in _landing_rows(settings, "bioreactor/BR-XURI-01_B-1_expansion.csv") if r["param"] == "temperature"
    ]
    assert [(round(r["value"], 6), r["unit"]) for r in temps] == [(37.0, "degC")] * 3


def test_an_unknown_unit_is_quarantined_never_accepted(settings):
    _deliver(settings, {"bioreactor/BR-XURI-01_B-1_expansion.csv": _with_units(BR_ROWS, ph="mV")})
    got = _outcome(settings, "bioreactor/BR-XURI-01_B-1_expansion.csv")
    assert (got["outcome"], got["reason_kind"]) == ("quarantined", "units")
    assert "ph in 'mV', the registry expects 'pH'" in got["reason"]


def test_analyzer_units_per_row_converted_or_quarantined(settings):
    mg = [{**_sample("SM-1", "glucose", 360.0), "unit": "mg/dL"}, {**_sample("SM-1", "viability", 92.0)}]
    bad = [{**_sample("SM-1", "vcd", 1.2), "unit": "cells/µL", "batch_id": "B-2"}]
    _deliver(
        settings,
        {"analyzer/samples_B-1.parquet": analyzer_parquet(mg), "analyzer/samples_B-2.parquet": analyzer_parquet(bad)},
    )
    rows = {r["param"]: r for r in _landing_rows(settings, "analyzer/samples_B-1.parquet")}
    assert (rows["glucose"]["value"], rows["glucose"]["unit"]) == (pytest.approx(3.6), "g/L")
    reason = _outcome(settings, "analyzer/samples_B-1.parquet")["reason"]
    assert "1 glucose values converted from mg/dL to g/L" in reason
    got = _outcome(settings, "analyzer/samples_B-2.parquet")
    assert (got["outcome"], got["reason_kind"]) == ("quarantined", "units")


QC_OK = [
    "S-1,B-1,VIA-NC200,viability,91.2,91.2,%,2026-01-05T10:00:00Z,2026-01-06T10:00:00Z,,AN-1,v1",
    "S-1,B-1,LAL-KIN,endotoxin,<0.05,,EU/mL,2026-01-05T10:00:00Z,2026-01-06T11:00:00Z,,AN-2,v1",
    "S-1,B-1,STER-BACT,sterility,Negative,,,2026-01-05T10:00:00Z,2026-01-12T10:00:00Z,,AN-2,v1",
]


def _qc(*rows: str) -> bytes:
    return (QC_HEADER + "\r\n" + "".join(r + "\r\n" for r in rows)).encode()


def test_qc_results_in_their_specifications_units_are_accepted(settings):
    _deliver(settings, {"lims/qc_results_2026-01.csv": _qc(*QC_OK)})
    got = _outcome(settings, "lims/qc_results_2026-01.csv")
    assert (got["outcome"], got["rows_accepted"], got["reason"]) == ("accepted", 3, None)


@pytest.mark.parametrize(
    ("row", "says"),
    [
        (  # VCN per microgram of genomic DNA: no fixed factor to copies per cell
            "S-1,B-1,QPCR-VCN,vcn,12000,12000,copies/µg gDNA,2026-01-05T10:00:00Z,2026-01-06T10:00:00Z,,AN-1,v1",
            "vcn in 'copies/µg gDNA', the registry expects 'copies/cell'",
        ),
        (  # a numeric result without a unit is never compared with a limit
            "S-1,B-1,FLOW-CAR,car_positive,34.1,34.1,,2026-01-05T10:00:00Z,2026-01-06T10:00:00Z,,AN-1,v1",
            "car_positive has no unit, the registry expects '%'",
        ),
        (  # a censored bound in another unit: the marts would compare '<0.1' ng/mL with 50 pg/mL
            "S-1,B-1,POT-IFNG,ifng_potency,<0.1,,ng/mL,2026-01-05T10:00:00Z,2026-01-06T10:00:00Z,,AN-1,v1",
            "ifng_potency censored result '<0.1' in 'ng/mL' cannot be compared with limits in 'pg/mL'",
        ),
    ],
)
def test_qc_results_in_a_unit_their_specification_does_not_use_are_quarantined(settings, row, says):
    _deliver(settings, {"lims/qc_results_2026-01.csv": _qc(*QC_OK, row)})
    got = _outcome(settings, "lims/qc_results_2026-01.csv")
    assert (got["outcome"], got["reason_kind"]) == ("quarantined", "units")
    assert says in got["reason"]


def test_qc_results_in_a_convertible_unit_are_converted_to_the_specifications(settings):
    row = "S-1,B-1,POT-IFNG,ifng_potency,0.45,0.45,ng/mL,2026-01-05T10:00:00Z,2026-01-06T10:00:00Z,,AN-1,v1"
    _deliver(settings, {"lims/qc_results_2026-01.csv": _qc(*QC_OK, row)})
    got = _outcome(settings, "lims/qc_results_2026-01.csv")
    assert got["outcome"] == "accepted" and "1 ifng_potency values converted from ng/mL to pg/mL" in got["reason"]
    rows = {r["attribute"]: r for r in _landing_rows(settings, "lims/qc_results_2026-01.csv")}
    potency = rows["ifng_potency"]
    assert (potency["result_value"], potency["unit"], potency["result_text"]) == (pytest.approx(450.0), "pg/mL", "0.45")


def test_every_numeric_attribute_has_one_specification_unit():
    import csv

    from pipelines.paths import SEEDS_DIR

    with (SEEDS_DIR / "qc_specifications.csv").open(newline="") as fh:
        numeric = {r["attribute"] for r in csv.DictReader(fh) if r["result_type"] == "numeric"}
    units = integrity.spec_units()
    assert set(units) == numeric and units["ifng_potency"] == "pg/mL" and units["vcn"] == "copies/cell"


def test_the_registry_units_are_the_generators():
    from pipelines.generate.bioreactor import PARAM_UNITS

    assert integrity.PARAM_UNITS["bioreactor__readings"] == PARAM_UNITS


# --- calibration ----------------------------------------------------------------------------------------------


def test_measurements_after_the_calibration_due_date_are_flagged(settings):
    due = integrity.calibration_due()["CC-NC200-01"]  # 2026-06-10 in the registry
    on_due = {
        **_sample("SM-1", "viability", 92.0),
        "sampled_at": datetime(due.year, due.month, due.day, 23, tzinfo=UTC),
    }
    after = {
        **_sample("SM-2", "viability", 91.0),
        "sampled_at": datetime(due.year, due.month, due.day + 1, 1, tzinfo=UTC),
    }
    _deliver(settings, {"analyzer/samples_B-1.parquet": analyzer_parquet([on_due, after])})
    got = _outcome(settings, "analyzer/samples_B-1.parquet")
    assert got["outcome"] == "accepted" and got["rows_flagged"] == 1
    flags = {r["sample_id"]: r["_dq_flags"] for r in _landing_rows(settings, "analyzer/samples_B-1.parquet")}
    assert flags == {"SM-1": None, "SM-2": integrity.CALIBRATION_FLAG}


def test_controller_rows_past_calibration_flag_every_parameter(settings):
    due = integrity.calibration_due()["BR-XURI-01"]
    late = [r.replace("2026-01-09", (due + timedelta(days=1)).isoformat()) for r in BR_ROWS]
    _deliver(settings, {"bioreactor/BR-XURI-01_B-1_expansion.csv": controller(late[:1] + BR_ROWS[2:])})
    rows = _landing_rows(settings, "bioreactor/BR-XURI-01_B-1_expansion.csv")
    flagged = {(r["_source_row"], r["param"]) for r in rows if integrity.CALIBRATION_FLAG in (r["_dq_flags"] or "")}
    assert flagged == {(1, p) for p in integrity.PARAM_UNITS["bioreactor__readings"]}


# --- duplicates -----------------------------------------------------------------------------------------------


def test_misfiled_bytes_land_again_under_the_right_feed(settings):
    data = controller(BR_ROWS)
    _deliver(settings, {"analyzer/samples_B-1.parquet": data})  # a controller export filed as analyzer Parquet
    assert _outcome(settings, "analyzer/samples_B-1.parquet")["outcome"] == "quarantined"
    _deliver(settings, {"bioreactor/BR-XURI-01_B-1_expansion.csv": data}, run="run-2")
    got = _outcome(settings, "bioreactor/BR-XURI-01_B-1_expansion.csv")
    assert got["outcome"] == "accepted" and got["rows_accepted"] == 3 * 8


def test_quarantined_bytes_are_validated_again_when_redelivered(settings, monkeypatch):
    data = controller(BR_ROWS)
    registry = expectations.equipment_ids()
    monkeypatch.setattr(expectations, "equipment_ids", lambda: registry - {"BR-XURI-01"})
    _deliver(settings, {"bioreactor/BR-XURI-01_B-1_expansion.csv": data})
    first = _outcome(settings, "bioreactor/BR-XURI-01_B-1_expansion.csv")
    assert first["reason_kind"] == "unknown_instrument"
    monkeypatch.undo()  # the instrument has been registered since
    _deliver(settings, {"bioreactor/BR-XURI-01_B-1_expansion_redelivered.csv": data}, run="run-2")
    again = _outcome(settings, "bioreactor/BR-XURI-01_B-1_expansion_redelivered.csv")
    assert again["outcome"] == "accepted" and again["sha256"] == first["sha256"]
    # and only now is a third copy a duplicate (of the accepted delivery)
    _deliver(settings, {"bioreactor/BR-XURI-01_B-1_expansion_third.csv": data}, run="run-3")
    third = _outcome(settings, "bioreactor/BR-XURI-01_B-1_expansion_third.csv")
    assert third["outcome"] == "duplicate" and "BR-XURI-01_B-1_expansion_redelivered.csv" in third["reason"]


# --- misfiled: an export under another feed's path --------------------------------------------------------------


def test_an_export_with_another_feeds_columns_is_misfiled(settings):
    """QC results saved under the QMS folder with a deviations name: the columns say whose export it is."""
    _deliver(settings, {"qms/deviations_2026-01.csv": _qc(*QC_OK)})
    got = _outcome(settings, "qms/deviations_2026-01.csv")
    assert (got["outcome"], got["reason_kind"]) == ("quarantined", "misfiled")
    assert "feed lims__qc_results's (lims/qc_results_*.csv), not qms__deviations's" in got["reason"]


@pytest.mark.parametrize(
    ("rel", "kind", "says"),
    [
        ("qms/qc_results_2026-01.csv", "misfiled", "feed lims__qc_results does (lims/qc_results_*.csv)"),
        ("analyzer/BR-XURI-01_B-1_expansion.csv", "misfiled", "feed bioreactor__readings does"),
        ("qms/notes.csv", "unknown_feed", "no feed claims qms/notes.csv"),  # a bare *.csv pattern claims nothing
    ],
)
def test_a_file_in_another_systems_folder_is_named_for_what_it_is(settings, rel, kind, says):
    _deliver(settings, {rel: _qc(*QC_OK)})
    got = _outcome(settings, rel)
    assert (got["outcome"], got["reason_kind"]) == ("quarantined", kind)
    assert says in got["reason"]


# --- concurrency ----------------------------------------------------------------------------------------------


def test_two_ingests_of_the_same_files_at_once_record_each_delivery_once(settings, landing):
    """Two real processes land the same directory at the same moment: the landing lock serialises them."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pipelines.ingest import land\n"
        "from pipelines.settings import Settings\n"
        "land(Settings(home=sys.argv[1]), [sys.argv[2]], sys.argv[3])\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(settings.home), str(landing), f"run-{i}"]) for i in (1, 2)
    ]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]
    rows = control.file_outcomes(control.engine(settings))
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths)) == len([p for p in landing.rglob("*") if p.is_file()])


def test_the_manifest_refuses_a_second_row_for_one_delivery(settings):
    import sqlalchemy as sa

    eng = control.engine(settings)
    control.ensure_schema(eng)
    row = {
        "run_id": "r1",
        "received_at": datetime(2026, 1, 1, tzinfo=UTC),
        "source_system": "mes",
        "feed": "mes__batches",
        "original_name": "batches_2026-01.csv",
        "original_path": "/landing/mes/batches_2026-01.csv",
        "sha256": "ab" * 32,
        "size_bytes": 1,
        "raw_key": "k",
        "raw_uri": "u",
    }
    with eng.begin() as conn:
        control.add_manifest_row(conn, row)
    with pytest.raises(sa.exc.IntegrityError), eng.begin() as conn:
        control.add_manifest_row(conn, {**row, "run_id": "r2"})
