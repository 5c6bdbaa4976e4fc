"""`lakehouse revalidate`: files already decided are validated again after a registry or suite change; the earlier
outcome stays on record, the new one counts, derived objects follow it, the raw bytes never change."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines import control
from pipelines.ingest import land
from pipelines.settings import Settings
from pipelines.validate import expectations, revalidate, validate_pending

from ..orchestration.test_cli import assert_one_line_error, lakehouse
from .conftest import BR_ROWS, controller

NAME = "bioreactor/BR-XURI-01_B-1_expansion.csv"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", landing_dir=tmp_path / "landing", landing_settle_seconds=0)


def _deliver(settings: Settings, rel: str, data: bytes, run: str) -> None:
    p = Path(settings.landing_dir) / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    land(settings, [p], run)
    validate_pending(settings, run)


def _history(settings: Settings, sha256: str) -> list[tuple[str, str | None]]:
    """Every verdict recorded for the file, oldest first."""
    o = control.file_outcomes_t
    q = sa.select(o.c.outcome, o.c.reason_kind).where(o.c.sha256 == sha256).order_by(o.c.seq)
    with control.engine(settings).connect() as conn:
        return [tuple(r) for r in conn.execute(q)]


def _current(settings: Settings) -> dict:
    (only,) = [f for f in control.file_outcomes(control.engine(settings)) if f["outcome"] != "duplicate"]
    return only


def _unregister(monkeypatch) -> None:
    registry = expectations.equipment_ids()
    monkeypatch.setattr(expectations, "equipment_ids", lambda: registry - {"BR-XURI-01"})


def test_a_quarantined_file_is_accepted_after_the_registry_changed(settings, monkeypatch):
    data = controller(BR_ROWS)
    sha = hashlib.sha256(data).hexdigest()
    _unregister(monkeypatch)
    _deliver(settings, NAME, data, "run-1")
    raw = Path(_current(settings)["raw_uri"])
    monkeypatch.undo()  # the instrument is registered now

    targets = control.revalidation_targets(control.engine(settings), sha256s=[sha])
    verdicts = revalidate(settings, "run-2", targets)

    assert [v.outcome for v in verdicts] == ["accepted"]
    assert _history(settings, sha) == [("quarantined", "unknown_instrument"), ("accepted", None)]
    now = _current(settings)
    assert now["outcome"] == "accepted" and now["rows_accepted"] == 3 * 8 and Path(now["landing_uri"]).is_file()
    assert hashlib.sha256(raw.read_bytes()).hexdigest() == sha  # raw bytes untouched


def test_an_accepted_file_quarantined_on_revalidation_leaves_landing(settings, monkeypatch):
    data = controller(BR_ROWS)
    sha = hashlib.sha256(data).hexdigest()
    _deliver(settings, NAME, data, "run-1")
    landing = Path(_current(settings)["landing_uri"])
    assert landing.is_file()
    _unregister(monkeypatch)  # e.g. the instrument was withdrawn from the registry

    verdicts = revalidate(
        settings, "run-2", control.revalidation_targets(control.engine(settings), names=[NAME.split("/")[1]])
    )

    assert [v.outcome for v in verdicts] == ["quarantined"]
    assert _history(settings, sha) == [("accepted", None), ("quarantined", "unknown_instrument")]
    assert not landing.exists()  # the marts can no longer take rows from it
    assert Path(_current(settings)["quarantine_uri"]).is_file()


def test_duplicates_and_unmatched_files_are_not_targets(settings):
    data = controller(BR_ROWS)
    _deliver(settings, NAME, data, "run-1")
    _deliver(settings, "bioreactor/BR-XURI-01_B-1_expansion_again.csv", data, "run-2")  # a duplicate
    eng = control.engine(settings)
    targets = control.revalidation_targets(eng, feeds=["bioreactor__readings"])
    assert [t["original_name"] for t in targets] == ["BR-XURI-01_B-1_expansion.csv"]
    assert targets[0]["previous_outcome"] == "accepted"
    assert control.revalidation_targets(eng, sha256s=["0" * 64], feeds=["lims__qc_results"]) == []


def test_revalidate_usage_errors_are_one_line(tmp_path):
    assert_one_line_error(lakehouse("revalidate", tmp_path=tmp_path), 2, "--sha256, --file or --feed")
    assert_one_line_error(lakehouse("revalidate", "--feed", "nope", tmp_path=tmp_path), 2, "unknown feed(s) nope")
    assert_one_line_error(
        lakehouse("revalidate", "--sha256", "0" * 64, tmp_path=tmp_path), 2, "no accepted or quarantined landed file"
    )


def test_a_new_quarantine_reason_is_recorded_beside_the_earlier_one(settings, monkeypatch):
    """Quarantined again for another reason: the new reason is added, the first reason.json and the bytes stay."""
    import json

    from pipelines.validate import integrity

    data = controller(BR_ROWS)
    sha = hashlib.sha256(data).hexdigest()
    _unregister(monkeypatch)
    _deliver(settings, NAME, data, "run-1")
    folder = Path(_current(settings)["quarantine_uri"]).parent
    first = (folder / "reason.json").read_bytes()
    monkeypatch.undo()  # the instrument is registered now, but the unit registry changed: pH is now recorded in mV
    monkeypatch.setitem(integrity.PARAM_UNITS["bioreactor__readings"], "ph", "mV")

    revalidate(settings, "run-2", control.revalidation_targets(control.engine(settings), sha256s=[sha]))
    revalidate(settings, "run-2", control.revalidation_targets(control.engine(settings), sha256s=[sha]))  # redone

    assert _history(settings, sha) == [
        ("quarantined", "unknown_instrument"),
        ("quarantined", "units"),
        ("quarantined", "units"),
    ]
    assert (folder / "reason.json").read_bytes() == first  # the earlier evidence is never rewritten
    assert sorted(p.name for p in folder.glob("reason*.json")) == ["reason-2.json", "reason.json"]
    newest = json.loads((folder / "reason-2.json").read_text())
    assert (newest["reason_kind"], newest["run_id"], newest["supersedes"]) == ("units", "run-2", "reason.json")
    assert "ph in 'pH', the registry expects 'mV'" in newest["reason"]
    assert json.loads(first)["reason_kind"] == "unknown_instrument"
    assert hashlib.sha256((folder / NAME.split("/")[1]).read_bytes()).hexdigest() == sha

    revalidate(settings, "run-3", control.revalidation_targets(control.engine(settings), sha256s=[sha]))
    assert json.loads((folder / "reason-3.json").read_text())["run_id"] == "run-3"  # every decision is on record
