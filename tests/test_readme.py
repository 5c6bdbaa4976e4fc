"""The README is what a newcomer reads first: its settings table and links must match the code."""

import re
from pathlib import Path

from pipelines.settings_doc import HEADER, render

README = Path(__file__).resolve().parents[1] / "README.md"


def test_settings_table_matches_the_settings_model():
    text = README.read_text()
    block = text.split("<!-- settings:start", 1)[1].split("<!-- settings:end -->", 1)[0]
    rows = [line for line in block.splitlines() if line.startswith("| `LAKEHOUSE_")]
    expected = [line for line in render()[len(HEADER) :].splitlines() if line.startswith("| `LAKEHOUSE_")]
    assert rows == expected, "README settings table is stale: regenerate it from pipelines.settings_doc"


def test_relative_links_resolve():
    text = README.read_text()
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text)
    missing = [t for t in targets if not (README.parent / t).exists()]
    assert not missing, f"README links to missing paths: {missing}"


def test_quick_start_commands_are_documented():
    text = README.read_text()
    for command in ("make demo", "make test", "make lab-test"):
        assert command in text
