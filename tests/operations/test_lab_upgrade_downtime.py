"""lab/upgrade's downtime arithmetic over probe samples (the probes themselves run on the lab hosts)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

LAB_UPGRADE = Path(__file__).resolve().parents[2] / "lab" / "upgrade"


def load():
    loader = importlib.machinery.SourceFileLoader("lab_upgrade", str(LAB_UPGRADE))
    spec = importlib.util.spec_from_loader("lab_upgrade", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_down_time_is_the_span_of_failed_samples_and_the_longest_outage_is_kept():
    up = load()
    samples = {
        "bi@h": [(0, True), (2, False), (4, False), (6, True), (8, False), (10, True), (12, True)],
        "storage@h": [(0, True), (2, True)],
    }
    d = up.downtime(samples)
    assert d["bi@h"] == {"down_seconds": 6.0, "longest_outage_seconds": 4.0, "samples": 7, "failed_samples": 3,
                         "probe_gaps": 0, "window_seconds": 12}  # fmt: skip
    assert d["storage@h"]["down_seconds"] == 0 and d["storage@h"]["failed_samples"] == 0


def test_a_lost_probe_session_is_a_gap_not_silence():
    up = load()
    d = up.downtime({"lineage@h": [(0, True), (30, True), (32, False), (34, True)]})
    assert d["lineage@h"]["probe_gaps"] == 1
    assert d["lineage@h"]["down_seconds"] == 2.0
