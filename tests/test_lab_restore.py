"""lab/restore's comparison of the original and the restored lakehouse: it must fail on every kind of difference
and on a measurement that shows nothing (no mart rows, no raw object)."""

from __future__ import annotations

import copy
import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_loader = importlib.machinery.SourceFileLoader("lab_restore", str(ROOT / "lab" / "restore"))
_spec = importlib.util.spec_from_loader("lab_restore", _loader)
lab_restore = importlib.util.module_from_spec(_spec)
_loader.exec_module(lab_restore)

LOCK = {"enabled": True, "mode": "GOVERNANCE", "days": 30}


def entry(key, sha, **kw):
    return {
        "key": key,
        "delete_marker": False,
        "sha256": sha,
        "size": 10,
        "retention_mode": "GOVERNANCE",
        "retain_until": "2027-01-01T10:00:00Z",
        "legal_hold": False,
        **kw,
    }


BEFORE = {
    "marts": [{"name": "marts.batch_overview", "type": "BASE TABLE", "n": 3}, {"name": "marts.kpis", "n": 0}],
    "buckets": [
        {
            "name": "raw",
            "versioning": "Enabled",
            "object_lock": LOCK,
            "entries": [
                entry("a", "1" * 64),
                entry("a", "2" * 64),
                {"key": "b", "delete_marker": True, "size": 0},
            ],
        },
        {"name": "lake", "versioning": "", "object_lock": {"enabled": False}, "entries": [entry("p", "3" * 64)]},
    ],
}


def test_identical_restore_passes_and_fractional_seconds_do_not_count():
    after = copy.deepcopy(BEFORE)
    after["buckets"][0]["entries"][0]["retain_until"] = "2027-01-01T10:00:00.000Z"
    result = lab_restore.compare(BEFORE, after)
    assert result["ok"], result
    raw = result["buckets"][1] if result["buckets"][1]["name"] == "raw" else result["buckets"][0]
    assert (raw["versions_before"], raw["identical"], raw["delete_markers_after"], raw["locked_after"]) == (2, 3, 1, 2)
    assert "| marts.batch_overview | 3 | 3 | same |" in lab_restore.report(result)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["marts"][0].update(n=2),  # a mart lost rows
        lambda d: d["marts"].pop(),  # a mart is missing
        lambda d: d["buckets"][0]["entries"][1].update(sha256="9" * 64),  # other bytes
        lambda d: d["buckets"][0]["entries"][0].update(retention_mode=""),  # lock not re-applied
        lambda d: d["buckets"][0]["entries"][0].update(retain_until="2026-12-31T10:00:00Z"),  # shorter retention
        lambda d: d["buckets"][0]["entries"].pop(0),  # an old version lost
        lambda d: d["buckets"][0]["entries"].pop(),  # a delete marker lost
        lambda d: d["buckets"][0]["entries"].reverse(),  # history in another order: another current version
        lambda d: d["buckets"][0].update(object_lock={"enabled": False}),  # the bucket lost its lock
        lambda d: d["buckets"][1]["entries"].append(entry("extra", "4" * 64)),  # an object that was not there
        lambda d: d["buckets"].pop(),  # a bucket is missing
    ],
)
def test_every_kind_of_difference_fails(change):
    after = copy.deepcopy(BEFORE)
    change(after)
    assert not lab_restore.compare(BEFORE, after)["ok"]


def test_a_measurement_that_shows_nothing_fails():
    empty = {"marts": [{"name": "marts.kpis", "n": 0}], "buckets": [{**BEFORE["buckets"][1]}]}
    result = lab_restore.compare(empty, copy.deepcopy(empty))
    assert not result["ok"]
    assert len(result["problems"]) == 2
