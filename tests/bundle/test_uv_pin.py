"""The uv the dagster role installs from the bundle is the uv the Makefile uses (docs/decisions/0090)."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bundle_uv_pin_matches_the_makefile():
    makefile = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M).group(1)
    pins = [line for line in (REPO / "bundle" / "uv-requirements.txt").read_text().splitlines() if line[:1].isalnum()]
    assert pins == [f"uv=={makefile}"]
