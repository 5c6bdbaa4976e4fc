"""Against the generator's truth file: every injected fault ends as the generator says it must."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines import control
from pipelines.generate import generate, truth_path
from pipelines.ingest import land
from pipelines.settings import Settings
from pipelines.validate import validate_pending


def test_outcomes_match_generator_truth(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", landing_dir=tmp_path / "landing")
    generate(settings, settings.landing_dir, 6, 7, 0.3)
    land(settings, [settings.landing_dir], "run-1")
    validate_pending(settings, "run-1")
    truth = json.loads(truth_path(settings).read_text())
    files = truth["files"] if isinstance(truth, dict) else truth
    got = {f"{f['source_system']}/{f['file']}": f for f in control.file_outcomes(control.engine(settings))}
    assert len(got) == len(files)
    kinds = set()
    for f in files:
        expected, g = f["expected_outcome"], got[f["file"]]
        kinds.add(expected)
        if expected.startswith("quarantined:"):
            assert (g["outcome"], g["reason_kind"]) == ("quarantined", expected.split(":")[1]), f["file"]
        elif expected == "duplicate":
            assert g["outcome"] == "duplicate", f["file"]
        elif expected == "rows-rejected":
            assert (g["outcome"], g["rows_rejected"]) == ("accepted", f["rows_rejected"]), f["file"]
        else:
            assert (g["outcome"], g["rows_rejected"]) == ("accepted", 0), (f["file"], g["reason"])
            if expected == "accepted-with-flags":
                assert g["rows_flagged"] > 0, f["file"]
    # the generator injected every structural kind, so this test covers each of them
    assert {"duplicate", "quarantined:empty", "quarantined:encoding", "quarantined:schema_drift"} <= kinds
