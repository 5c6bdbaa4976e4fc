"""Role READMEs name every input: each option of meta/argument_specs.yml and each key of defaults/main.yml.

Only the roles listed below are held to it yet; the others' READMEs still miss inputs (run this module with
ROLES_ALL=1 to list them) and join the list as they are completed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPLETE = ["dagster", "marquez", "superset"]
ROLES = sorted(p.parent.parent.name for p in ROOT.glob("roles/*/meta/argument_specs.yml"))


def role_inputs(role: str) -> set[str]:
    spec = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    names = {name for entry in spec["argument_specs"].values() for name in (entry.get("options") or {})}
    defaults = ROOT / "roles" / role / "defaults" / "main.yml"
    if defaults.is_file():
        names |= set(yaml.safe_load(defaults.read_text()) or {})
    return names


@pytest.mark.parametrize("role", ROLES if os.environ.get("ROLES_ALL") else COMPLETE)
def test_role_readme_names_every_input(role):
    named = set(re.findall(r"`([a-z0-9_]+)`", (ROOT / "roles" / role / "README.md").read_text()))
    assert sorted(role_inputs(role) - named) == []
