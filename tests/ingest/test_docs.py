"""docs/ingest.md documents every expectation of every suite with its policy (the policy table is the contract)."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.sources import FEEDS
from pipelines.validate.expectations import SUITES_DIR, load_suite

DOC = Path(__file__).resolve().parents[2] / "docs" / "ingest.md"


def test_every_feed_has_a_valid_suite() -> None:
    assert sorted(p.stem for p in SUITES_DIR.glob("*.json")) == sorted(f.name for f in FEEDS)
    for feed in FEEDS:
        assert load_suite(feed.name).rules


def test_policy_table_matches_suites() -> None:
    text = DOC.read_text()
    for feed in FEEDS:
        suite = json.loads((SUITES_DIR / f"{feed.name}.json").read_text())
        section = text.split(f"### `{feed.name}` (suite version {suite['meta']['version']})")[1].split("###")[0]
        for e in suite["expectations"]:
            assert f"| `{e['meta']['name']}` |" in section and f"**{e['meta']['policy']}**" in section, e["meta"]
