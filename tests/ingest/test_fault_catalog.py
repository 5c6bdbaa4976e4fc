"""Every case of the generator's fault catalog ends as the catalog documents it: one test per kind, each checking
the outcome and the evidence particular to the kind (the reason, the converted values, the flagged rows)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines import control
from pipelines.generate import generate, truth_path
from pipelines.generate.faults import CATALOG, OOS_KIND
from pipelines.ingest import land
from pipelines.settings import Settings
from pipelines.validate import integrity, validate_pending

KINDS = [k.name for k in (*CATALOG, OOS_KIND)]


@pytest.fixture(scope="module")
def landed(tmp_path_factory):
    """A small data set with many faults (every kind at least once), landed and validated."""
    tmp = tmp_path_factory.mktemp("catalog")
    settings = Settings(home=tmp / "home", landing_dir=tmp / "landing", landing_settle_seconds=0)
    generate(settings, settings.landing_dir, 8, 11, 0.3)
    land(settings, [settings.landing_dir], "run-1")
    validate_pending(settings, "run-1")
    truth = json.loads(truth_path(settings).read_text())
    got = {f"{f['source_system']}/{f['file']}": f for f in control.file_outcomes(control.engine(settings))}
    return truth, got


def _rows(outcome: dict) -> list[dict]:
    return pq.read_table(outcome["landing_uri"]).to_pylist()


def test_every_kind_is_in_the_data_set(landed):
    truth, _ = landed
    assert set(KINDS) <= {f["kind"] for f in truth["faults"]}


@pytest.mark.parametrize("kind", KINDS)
def test_the_case_ends_as_documented(landed, kind):
    truth, got = landed
    documented = {c["kind"]: c["expected_outcome"] for c in truth["catalog"]}[kind]
    faults = [f for f in truth["faults"] if f["kind"] == kind]
    assert faults
    for f in faults:
        g, d = got[f["file"]], f["detail"]
        assert f["expected_outcome"] == documented
        if documented.startswith("quarantined:"):
            assert (g["outcome"], g["reason_kind"]) == ("quarantined", documented.split(":")[1]), (f["file"], g)
            assert Path(g["quarantine_uri"]).is_file()
        elif documented == "duplicate":
            assert g["outcome"] == "duplicate" and d["copy_of"].split("/")[1] in g["reason"]
        else:
            assert g["outcome"] == "accepted", (f["file"], g["reason"])
        _evidence(kind, f, g, d)


def _evidence(kind: str, f: dict, g: dict, d: dict) -> None:
    """What each kind must leave besides its outcome."""
    if kind == "unknown_instrument":
        assert d["instrument_id"] in g["reason"]
    elif kind == "local_timestamps":
        first = min(r["ts_utc"] for r in _rows(g))
        assert first.strftime("%Y-%m-%dT%H:%M:%SZ") == d["first_ts_utc"]
    elif kind == "schema_drift":
        assert (d.get("now") or d.get("missing")) in g["reason"]
    elif kind == "identity_mismatch":
        assert d["file_batch"] in g["reason"] and d["other_batch"] in g["reason"]
    elif kind == "unknown_unit":
        assert f"{d['param']} in '{d['unit']}'" in g["reason"]
    elif kind == "misfiled":
        assert f"feed {f['feed']}" in g["reason"]
    elif kind == "unit_converted":
        assert "values converted from mg/dL to g/L" in g["reason"]
        by_row = {(r["_source_row"]): r for r in _rows(g)}
        landed = [(by_row[r]["value"], by_row[r]["unit"]) for r in d["rows"]]
        assert landed == [(pytest.approx(v, rel=1e-12), "g/L") for v in d["registry_values"]]
    elif kind == "past_calibration":
        flagged = {r["_source_row"] for r in _rows(g) if integrity.CALIBRATION_FLAG in (r["_dq_flags"] or "")}
        assert set(d["rows"]) <= flagged and g["rows_flagged"] >= len(d["rows"])
    elif kind == "missing_value":
        assert g["rows_flagged"] > 0 and g["rows_rejected"] == 0
    elif kind in ("missing_required_value", "impossible_value"):
        assert g["rows_rejected"] == len(d["rows"])
        rejected = pq.read_table(g["rejected_uri"]).to_pylist()
        assert sorted(r["_source_row"] for r in rejected) == d["rows"]
    elif kind == "oos_value":
        rows = [r for r in _rows(g) if (r["sample_id"], r["test_code"]) == (d["sample_id"], d["test_code"])]
        assert len(rows) == 1 and rows[0]["_dq_flags"] is None  # a real result: loaded as reported, not flagged
