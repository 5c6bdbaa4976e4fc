"""Role READMEs name every input: each option of meta/argument_specs.yml and each key of defaults/main.yml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ROLES = sorted(p.parent.parent.name for p in ROOT.glob("roles/*/meta/argument_specs.yml"))


def role_inputs(role: str) -> set[str]:
    spec = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    names = {name for entry in spec["argument_specs"].values() for name in (entry.get("options") or {})}
    defaults = ROOT / "roles" / role / "defaults" / "main.yml"
    if defaults.is_file():
        names |= set(yaml.safe_load(defaults.read_text()) or {})
    return names


def readme_names(role: str) -> set[str]:
    """Names a README documents: in backticks in its text and tables, or as keys of its YAML blocks of defaults."""
    text = (ROOT / "roles" / role / "README.md").read_text()
    named = set(re.findall(r"`([a-z0-9_]+)`", text))
    for block in re.findall(r"^```ya?ml\n(.*?)^```", text, flags=re.M | re.S):
        named |= set(re.findall(r"^\s*([a-z0-9_]+):", block, flags=re.M))
    return named


@pytest.mark.parametrize("role", ROLES)
def test_role_readme_names_every_input(role):
    assert sorted(role_inputs(role) - readme_names(role)) == []
