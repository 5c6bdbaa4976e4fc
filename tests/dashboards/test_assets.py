"""The dashboards as code (dashboards/assets): complete, self-consistent, secret-free, and renderable per site.

These run without Superset (the import tool's reading and rendering half); tests/dashboards/test_superset.py
imports the assets into a real Superset and renders them in Chromium.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "dashboards"))

import superset_import as si  # noqa: E402

DASHBOARD_TITLES = {"Manufacturing overview", "QC release", "Bioreactor run", "Data integrity"}
PG_URI = "postgresql+psycopg2://superset_bi@db.example:5432/marts?sslmode=verify-full"


@pytest.fixture(scope="module")
def assets():
    return si.load_assets()


def _of(assets, kind):
    return {n: a for n, a in assets.items() if n.startswith(kind + "/")}


def test_the_four_dashboards_are_there(assets):
    assert {a["dashboard_title"] for a in _of(assets, "dashboards").values()} == DASHBOARD_TITLES


def test_every_chart_states_its_grain_and_unit(assets):
    for name, chart in _of(assets, "charts").items():
        text = chart.get("description") or ""
        assert "Grain:" in text and "Unit" in text, name


def test_datasets_read_only_the_marts_schema(assets):
    for name, ds in _of(assets, "datasets").items():
        assert ds["schema"] == "marts", name
        assert not ds.get("sql"), f"{name}: a virtual dataset could read any schema"
    rendered = si.render(assets, PG_URI, schema="bi_marts")
    assert {ds["schema"] for n, ds in rendered.items() if n.startswith("datasets/")} == {"bi_marts"}


def test_no_connection_or_secret_in_the_repository(assets):
    (db,) = _of(assets, "databases").values()
    assert "password" not in db and "@" not in db["sqlalchemy_uri"]
    rendered = si.render(assets, PG_URI)
    assert {d["sqlalchemy_uri"] for n, d in rendered.items() if n.startswith("databases/")} == {PG_URI}


def test_every_chart_gets_a_data_request_on_its_own_dataset(assets):
    rendered = si.render(assets, PG_URI)
    datasets = {str(d["uuid"]): d for d in _of(rendered, "datasets").values()}
    for name, chart in _of(rendered, "charts").items():
        qc = json.loads(chart["query_context"])
        columns = {c["column_name"] for c in datasets[str(chart["dataset_uuid"])]["columns"]}
        assert qc["queries"], name
        for q in qc["queries"]:
            assert q.get("metrics") or q.get("columns"), name
            for col in q.get("columns", []):
                ref = col if isinstance(col, str) else col["sqlExpression"]
                assert ref in columns, f"{name}: {ref} is not a column of its dataset"
            for f in q["filters"]:
                assert f["col"] in columns, f"{name}: filter on {f['col']}"


def test_uuids_are_unique_and_layouts_resolve(assets):
    uuids = [str(a["uuid"]) for a in assets.values()]
    assert len(uuids) == len(set(uuids))
    charts_on_dashboards = set()
    for dash in _of(assets, "dashboards").values():
        charts_on_dashboards |= {
            n["meta"]["uuid"] for n in dash["position"].values() if isinstance(n, dict) and n.get("type") == "CHART"
        }
    assert charts_on_dashboards == {str(c["uuid"]) for c in _of(assets, "charts").values()}


def _run(tmp_env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "dashboards" / "superset_import.py"), *args],
        env=tmp_env,
        capture_output=True,
        text=True,
    )


def test_bad_input_is_one_line_and_nonzero(tmp_path):
    env = {"PATH": "/usr/bin:/bin"}
    missing_uri = _run(env, "--render-only")
    assert missing_uri.returncode == 1 and "DASHBOARDS_MARTS_URI" in missing_uri.stderr
    assert len(missing_uri.stderr.strip().splitlines()) == 1
    env["DASHBOARDS_MARTS_URI"] = PG_URI
    broken = tmp_path / "assets"
    shutil.copytree(si.ASSETS, broken)
    chart = next((broken / "charts").glob("*.yaml"))
    data = yaml.safe_load(chart.read_text())
    data["dataset_uuid"] = "00000000-0000-4000-8000-000000000000"
    chart.write_text(yaml.safe_dump(data))
    bad_ref = _run(env, "--render-only", "--assets", str(broken))
    assert bad_ref.returncode == 1 and "matches no dataset file" in bad_ref.stderr
    assert len(bad_ref.stderr.strip().splitlines()) == 1
    no_superset = _run(env)
    assert no_superset.returncode == 1 and "SUPERSET_CONFIG_PATH" in no_superset.stderr


def test_password_file_masks_the_uri_and_refuses_a_second_password(tmp_path):
    # Superset keeps a separately given password only when the URI carries its mask (ADR 0105).
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    env = {"PATH": "/usr/bin:/bin", "DASHBOARDS_MARTS_PASSWORD_FILE": str(pw), "DASHBOARDS_MARTS_URI": PG_URI}
    rendered = _run(env, "--render-only")
    assert rendered.returncode == 0 and "s3cret" not in rendered.stdout
    uris = {d["sqlalchemy_uri"] for n, d in json.loads(rendered.stdout).items() if n.startswith("databases/")}
    assert uris == {PG_URI.replace("superset_bi@", f"superset_bi:{si.PASSWORD_MASK}@")}
    env["DASHBOARDS_MARTS_URI"] = PG_URI.replace("superset_bi@", "superset_bi:x@")
    both = _run(env, "--render-only")
    assert both.returncode == 1 and "give it once" in both.stderr
    assert len(both.stderr.strip().splitlines()) == 1
