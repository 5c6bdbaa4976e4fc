"""docs/data.md documents every fault kind with the outcome the code records (the catalog's one source is code)."""

from pathlib import Path

from pipelines.generate.faults import CATALOG, OOS_KIND

DOC = Path(__file__).resolve().parents[2] / "docs" / "data.md"


def test_every_fault_kind_is_documented_with_its_expected_outcome():
    rows = {
        line.split("|")[1].strip().strip("`"): line for line in DOC.read_text().splitlines() if line.startswith("| `")
    }
    for kind in (*CATALOG, OOS_KIND):
        assert kind.name in rows, f"docs/data.md lacks fault kind {kind.name}"
        assert f"`{kind.expected}`" in rows[kind.name], f"docs/data.md gives another outcome for {kind.name}"
