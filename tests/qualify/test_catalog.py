"""The requirements and checks files: consistent, traced both ways, rendered documents current."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pipelines.qualify import catalog

REPO = Path(__file__).resolve().parents[2]


def test_every_requirement_has_a_check_and_every_check_known_requirements():
    cat = catalog.load()
    assert len(cat.requirements) >= 15
    for rid in cat.requirements:
        assert cat.checks_for(rid), rid
    areas = {r.area for r in cat.requirements.values()}
    for needed in ("data-integrity", "access-control", "audit-trail", "backup-restore", "time", "lineage",
                   "dashboards", "pipeline-correctness", "installation"):  # fmt: skip
        assert needed in areas


def test_every_check_is_implemented_where_the_catalog_says():
    for chk in catalog.load().checks.values():
        path = REPO / chk.implemented_in
        assert path.is_file(), f"{chk.id}: {chk.implemented_in} does not exist"
        assert chk.id in path.read_text(), f"{chk.id} is not in {chk.implemented_in}"


def _copy(tmp_path: Path) -> Path:
    for name in ("requirements.yml", "checks.yml"):
        shutil.copy(catalog.DOCS_DIR / name, tmp_path / name)
    return tmp_path


def test_a_check_naming_an_unknown_requirement_fails(tmp_path):
    d = _copy(tmp_path)
    doc = yaml.safe_load((d / "checks.yml").read_text())
    doc["checks"][0]["requirements"].append("URS-XX-99")
    (d / "checks.yml").write_text(yaml.safe_dump(doc))
    with pytest.raises(catalog.CatalogError, match="names an unknown requirement URS-XX-99"):
        catalog.load(d)


def test_a_requirement_without_a_check_fails(tmp_path):
    d = _copy(tmp_path)
    doc = yaml.safe_load((d / "requirements.yml").read_text())
    doc["requirements"].append({**doc["requirements"][0], "id": "URS-IN-99"})
    (d / "requirements.yml").write_text(yaml.safe_dump(doc))
    with pytest.raises(catalog.CatalogError, match="requirement URS-IN-99 has no check"):
        catalog.load(d)


def test_the_generated_documents_are_current():
    rendered = catalog.render_all(catalog.load())
    for name, text in rendered.items():
        assert (catalog.DOCS_DIR / name).read_text() == text, f"{name}: run `lakehouse qualify docs` and commit"
    matrix = rendered["traceability.md"]
    for chk in catalog.load().checks.values():
        assert f"| {chk.id} |" in matrix


def test_qualify_docs_check_passes_on_current_documents(capsys):
    from pipelines.cli import main

    main(["qualify", "docs", "--check"])
    assert "documents current" in capsys.readouterr().out
