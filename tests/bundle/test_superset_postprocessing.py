"""The chart post-processing fragment of superset_config.py (ADR 0195) in the bundle's real Superset 6.1.

roles/superset/files/superset_config_postprocessing.py lets pandas aggregate mean/sum/min/max itself instead of
calling functools.partial(numpy function) once per group in Python. It must be wired by FLASK_APP_MUTATOR, change no
result beyond floating-point rounding (none at all for a chart's pivot, one row per axis value), leave every other
operator and column type as Superset builds it, and make an XmR chart's pivots of 996 points several times faster.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.bundle.conftest import REPO

pytestmark = pytest.mark.bundle
FRAGMENT = REPO / "roles" / "superset" / "files" / "superset_config_postprocessing.py"
CHECK = Path(__file__).with_name("superset_postprocessing_check.py")


@pytest.mark.timeout(1800)  # the session's Superset venv may be built for this test first
def test_pivots_give_the_same_results_faster(superset_python: Path, tmp_path: Path):
    run = subprocess.run(
        [str(superset_python), str(CHECK), str(FRAGMENT), str(tmp_path)], capture_output=True, text=True, check=True
    )
    report = json.loads(run.stdout.strip().splitlines()[-1])  # Superset prints which config it loaded first
    assert report["wired"] and report["pivot_module_patched"], report
    assert report["cases"] >= 190
    assert report["different"] == [], report["different"]
    assert report["one_row_per_group_bit_identical"], report["not_bit_identical"]
    assert report["worst_relative_difference"] <= 1e-14, report
    assert report["xmr_pivots_ms_after"] * 5 < report["xmr_pivots_ms_before"], report
