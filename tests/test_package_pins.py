"""Every OS package a role installs on the tested platform is pinned to a version (ADR 0024).

A pin is `name=version` where the version may end in `*` to admit Debian's security revisions of the same upstream
release (`+deb12uN`); the installed versions are recorded per host by IQ. The package tasks take their names only
from these lists, so a literal unpinned name in a task fails here too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
VARS_FILES = sorted(ROOT.glob("roles/*/vars/Debian.yml"))
PIN = re.compile(r"^[a-z0-9][a-z0-9.+-]*=[0-9][0-9A-Za-z.+~:-]*\*?$")
PACKAGE_MODULES = ("ansible.builtin.package", "ansible.builtin.apt")


def install_lists(path: Path) -> dict[str, list[str]]:
    data = yaml.safe_load(path.read_text())
    lists = {k: v for k, v in data.items() if k.endswith("packages") and not k.endswith("_absent")}
    # A list item may refer to a single pinned name defined beside it ("{{ __postgresql_common_package }}").
    refs = {k: v for k, v in data.items() if k.endswith("_package") and isinstance(v, str)}
    resolved = {}
    for key, items in lists.items():
        out = []
        for item in items:
            ref = re.fullmatch(r"\{\{\s*(\w+)\s*\}\}", item)
            out.append(refs[ref.group(1)] if ref else item)
        resolved[key] = out
    return resolved


@pytest.mark.parametrize("path", VARS_FILES, ids=lambda p: p.parts[-3])
def test_debian_packages_are_pinned(path: Path) -> None:
    lists = install_lists(path)
    assert lists, f"{path}: no package list"
    unpinned = [item for items in lists.values() for item in items if not PIN.match(item)]
    assert not unpinned, f"{path}: packages without a version pin: {unpinned}"


def walk(tasks: list) -> list[dict]:
    """Every task, including those inside block/rescue/always."""
    out = []
    for task in tasks or []:
        out.append(task)
        for key in ("block", "rescue", "always"):
            out += walk(task.get(key))
    return out


def test_package_tasks_take_names_from_the_pinned_lists() -> None:
    literal = []
    for tasks in ROOT.glob("roles/*/tasks/*.yml"):
        for task in walk(yaml.safe_load(tasks.read_text())):
            for module in PACKAGE_MODULES:
                args = task.get(module)
                if not args or args.get("state", "present") == "absent":
                    continue
                names = args["name"] if isinstance(args["name"], list) else [args["name"]]
                literal += [f"{tasks.relative_to(ROOT)}: {n}" for n in names if "{{" not in n and not PIN.match(n)]
    assert not literal, f"package tasks installing unpinned literal names: {literal}"
