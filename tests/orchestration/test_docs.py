"""Docs that must stay in step with the code: the settings table and the CLI reference."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines import settings_doc
from pipelines.cli import cli

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_settings_doc_is_current():
    assert (DOCS / "settings.md").read_text() == settings_doc.render(), "run `make settings-doc` and commit"


def test_every_setting_is_in_the_doc():
    from pipelines.settings import Settings

    text = (DOCS / "settings.md").read_text()
    for name in Settings.model_fields:
        assert f"`LAKEHOUSE_{name.upper()}`" in text


def test_every_cli_command_is_documented():
    documented = set(re.findall(r"^## lakehouse (\S+)", (DOCS / "cli.md").read_text(), flags=re.M))
    assert set(cli.commands) == documented
