"""The dbt project stays in step with the feed registry (pipelines/sources.py), without running dbt."""

from __future__ import annotations

import re

import yaml

from pipelines.sources import FEEDS_BY_NAME
from pipelines.transform.project import DBT_PROJECT_DIR

CURATED = DBT_PROJECT_DIR / "models" / "curated"


def _registry_enum(feed: str, column: str) -> list[str] | None:
    col = next(c for c in FEEDS_BY_NAME[feed].columns if c.name == column)
    if " | " not in col.description:
        return None
    return [v.strip().split(":")[-1].strip() for v in col.description.split("|")]


def test_accepted_values_are_the_registry_enumerations():
    spec = yaml.safe_load((CURATED / "curated.yml").read_text())
    checked = 0
    for model in spec["models"]:
        sql = (CURATED / f"{model['name']}.sql").read_text()
        feed = re.search(r"ref\('stg_(\w+)'\)", sql).group(1)
        for column in model.get("columns", []):
            for test in column.get("data_tests", []):
                if isinstance(test, dict) and "accepted_values" in test:
                    values = test["accepted_values"]["arguments"]["values"]
                    assert values == _registry_enum(feed, column["name"]), f"{model['name']}.{column['name']}"
                    checked += 1
    assert checked >= 8


def test_process_step_macro_lists_the_registry_steps():
    macro = (DBT_PROJECT_DIR / "macros" / "lakehouse.sql").read_text()
    listed = re.search(r"process_step_names\(\) -%\}.*?return\(\[(.*?)\]\)", macro, re.S).group(1)
    assert re.findall(r"'(\w+)'", listed) == _registry_enum("mes__process_steps", "step_name")


def test_every_feed_key_is_the_curated_dedup_key():
    for path in CURATED.glob("*.sql"):
        sql = path.read_text()
        feed = re.search(r"ref\('stg_(\w+)'\)", sql).group(1)
        key = re.search(r"\[([^\]]*)\]", sql[sql.index("latest_per_key") :]).group(1)
        assert tuple(re.findall(r"'(\w+)'", key)) == FEEDS_BY_NAME[feed].key, path.name
