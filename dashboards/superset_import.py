"""Import the dashboards as code (``dashboards/assets/``) into a Superset 6.1 instance, idempotently.

Run it with the Python of the Superset venv (it imports Superset and works inside its app context, like the
``superset`` CLI does)::

    SUPERSET_CONFIG_PATH=/etc/superset/superset_config.py \\
    DASHBOARDS_MARTS_URI='postgresql+psycopg2://superset_bi@db.example:5432/marts?sslmode=verify-full' \\
    DASHBOARDS_MARTS_PASSWORD_FILE=/etc/superset/marts-password \\
    /opt/superset/venv/bin/python dashboards/superset_import.py

What it does:

1. Reads the YAML tree (``databases/``, ``datasets/``, ``charts/``, ``dashboards/``; Superset's export format) and
   fills in what differs per installation: the marts database's SQLAlchemy URI (``DASHBOARDS_MARTS_URI``; the
   repository holds none, and no password), its password (``DASHBOARDS_MARTS_PASSWORD_FILE``, optional: the URI
   then carries Superset's password mask, as in Superset's own exports, so the importer keeps the password given
   beside it instead of taking "no password" from the URI), the marts schema (``DASHBOARDS_MARTS_SCHEMA``,
   default ``marts``) and each chart's ``query_context`` (derived from its ``params``, so
   ``GET /api/v1/chart/<id>/data`` answers for every chart: tests and the benchmark use it).
2. Imports databases, datasets, charts and dashboards in that order, each with ``overwrite=True`` (Superset's
   dashboard import alone never overwrites charts or datasets, so an edited chart YAML would be ignored).
3. Compares Superset's own export of these assets (and a hash of the stored marts password) before and after:
   ``changed`` is false when the import altered nothing (a re-import of the same YAML), true when an edit or a
   new password reached Superset.

The assets are owned by a service account (``--owner``, default ``dashboards-as-code``): created on first use,
inactive (it cannot sign in) and with the Admin role, which Superset's importers require to overwrite assets.

Output: one JSON line ``{"changed": ..., "databases": n, "datasets": n, "charts": n, "dashboards": n}``; exit 0.
Bad input or a failed import: one line on stderr, exit 1, nothing committed by the failing step.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import secrets
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

ASSETS = Path(__file__).resolve().parent / "assets"
KINDS = ("databases", "datasets", "charts", "dashboards")
# Superset's model class per kind: what metadata.yaml must declare for each import command.
MODEL_TYPES = {"databases": "Database", "datasets": "SqlaTable", "charts": "Slice", "dashboards": "Dashboard"}
EXPORT_VERSION = "1.0.0"
DEFAULT_OWNER = "dashboards-as-code"
# superset.constants.PASSWORD_MASK: a URI with this password makes the importer keep the password it is given
# separately (Database.set_sqlalchemy_uri); any other URI password, or none, replaces it.
PASSWORD_MASK = "X" * 10


class ImportError_(RuntimeError):
    """Bad input or a failed import (one-line message)."""


# --- reading and rendering the YAML tree (no Superset needed) ---------------------------------------


def load_assets(root: Path = ASSETS) -> dict[str, dict[str, Any]]:
    """``{"charts/x.yaml": {...}, ...}`` for every asset file under ``root``, checked for the basics."""
    if not root.is_dir():
        raise ImportError_(f"asset directory {root} does not exist")
    assets: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        for path in sorted((root / kind).glob("*.yaml")):
            name = f"{kind}/{path.name}"
            try:
                data = yaml.safe_load(path.read_text())
            except yaml.YAMLError as exc:
                raise ImportError_(f"{name}: not valid YAML ({str(exc).splitlines()[0]})") from None
            if not isinstance(data, dict) or "uuid" not in data:
                raise ImportError_(f"{name}: not a Superset asset (no uuid)")
            assets[name] = data
    if not any(n.startswith("dashboards/") for n in assets):
        raise ImportError_(f"no dashboards under {root}/dashboards")
    _check_references(assets)
    return assets


def _check_references(assets: dict[str, dict[str, Any]]) -> None:
    uuids = {kind: {str(a["uuid"]) for n, a in assets.items() if n.startswith(kind + "/")} for kind in KINDS}
    for name, a in assets.items():
        if name.startswith("datasets/") and str(a.get("database_uuid")) not in uuids["databases"]:
            raise ImportError_(f"{name}: database_uuid {a.get('database_uuid')} matches no database file")
        if name.startswith("charts/") and str(a.get("dataset_uuid")) not in uuids["datasets"]:
            raise ImportError_(f"{name}: dataset_uuid {a.get('dataset_uuid')} matches no dataset file")
        if name.startswith("dashboards/"):
            for node in (a.get("position") or {}).values():
                if isinstance(node, dict) and node.get("type") == "CHART":
                    ref = str(node.get("meta", {}).get("uuid"))
                    if ref not in uuids["charts"]:
                        raise ImportError_(f"{name}: chart {ref} in its layout matches no chart file")


def render(
    assets: dict[str, dict[str, Any]], marts_uri: str, schema: str = "marts", with_password: bool = False
) -> dict[str, dict[str, Any]]:
    """The assets as this installation imports them: marts URI and schema set, query contexts derived.

    ``with_password``: the password comes separately (``import_assets``); the URI gets Superset's mask for it."""
    out = copy.deepcopy(assets)
    for name, a in out.items():
        a.setdefault("version", EXPORT_VERSION)
        if name.startswith("databases/"):
            a["sqlalchemy_uri"] = _masked(marts_uri) if with_password else marts_uri
        elif name.startswith("datasets/"):
            a["schema"] = schema
        elif name.startswith("charts/") and not a.get("query_context"):
            a["query_context"] = json.dumps(query_context(a), sort_keys=True)
    return out


def _masked(uri: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(uri)
    except ArgumentError:
        raise ImportError_("DASHBOARDS_MARTS_URI is not an SQLAlchemy URI") from None
    if url.password is not None:
        raise ImportError_(
            "DASHBOARDS_MARTS_URI carries a password and DASHBOARDS_MARTS_PASSWORD_FILE is set: give it once"
        )
    return url.set(password=PASSWORD_MASK).render_as_string(hide_password=False)


def query_context(chart: dict[str, Any]) -> dict[str, Any]:
    """The chart-data request Superset's frontend would send for this chart's ``params``.

    Covers the visualisations the assets use (table, big number, pie, bar/line/mixed time series with a temporal
    or numeric x axis); each query carries the chart's own filters, row limit and ordering.
    """
    p = chart.get("params") or {}
    viz = chart["viz_type"]

    def base(prefix: str = "") -> dict[str, Any]:
        filters = [
            {"col": f["subject"], "op": f["operator"], "val": f.get("comparator")}
            for f in p.get(f"adhoc_filters{prefix}", [])
            if f.get("expressionType") == "SIMPLE"
        ]
        where = " AND ".join(
            f"({f['sqlExpression']})"
            for f in p.get(f"adhoc_filters{prefix}", [])
            if f.get("expressionType") == "SQL" and f.get("clause", "WHERE") == "WHERE"
        )
        return {
            "filters": filters,
            "extras": {"where": where, "having": ""},
            "time_range": p.get("time_range", "No filter"),
            "row_limit": p.get(f"row_limit{prefix}", p.get("row_limit", 10000)),
            "orderby": [],
            "annotation_layers": [],
            "url_params": {},
            "custom_params": {},
            "custom_form_data": {},
        }

    def series(prefix: str = "") -> dict[str, Any]:
        q = base(prefix)
        x = p["x_axis"]
        x_col = (
            {"label": x, "sqlExpression": x, "columnType": "BASE_AXIS", "timeGrain": p.get("time_grain_sqla")}
            if p.get("time_grain_sqla")
            else {"label": x, "sqlExpression": x, "columnType": "BASE_AXIS", "expressionType": "SQL"}
        )
        if p.get("time_grain_sqla"):
            x_col["expressionType"] = "SQL"
        metrics = p.get(f"metrics{prefix}", [])
        q.update(
            columns=[x_col, *p.get(f"groupby{prefix}", [])],
            metrics=metrics,
            orderby=[[metrics[0], False]] if metrics and p.get("groupby" + prefix) else [],
            series_columns=p.get(f"groupby{prefix}", []),
            post_processing=[
                {
                    "operation": "pivot",
                    "options": {
                        "index": [x],
                        "columns": p.get(f"groupby{prefix}", []),
                        "aggregates": {_label(m): {"operator": "mean"} for m in metrics},
                        "drop_missing_columns": False,
                    },
                },
                {"operation": "flatten"},
            ],
        )
        return q

    if viz == "table":
        q = base()
        if p.get("query_mode") == "raw":
            # order_by_cols holds JSON strings like '["sampled_at", false]' (column, ascending)
            q.update(columns=p.get("all_columns", []), orderby=[json.loads(o) for o in p.get("order_by_cols", [])])
        else:
            metrics = p.get("metrics", [])
            q.update(
                columns=p.get("groupby", []),
                metrics=metrics,
                orderby=[[metrics[0], not p.get("order_desc", True)]] if metrics else [],
            )
        queries = [q]
    elif viz in ("big_number_total", "pie"):
        q = base()
        metric = p["metric"]
        q.update(columns=p.get("groupby", []), metrics=[metric], orderby=[[metric, False]] if viz == "pie" else [])
        queries = [q]
    elif viz.startswith("echarts_timeseries") or viz == "echarts_area":
        queries = [series()]
    elif viz == "mixed_timeseries":
        queries = [series(), series("_b")]
    else:
        raise ImportError_(f"chart {chart.get('slice_name')!r}: viz_type {viz} has no query builder here")
    form_data = {**p, "viz_type": viz}
    return {
        "datasource": {"id": 0, "type": "table"},  # replaced by Superset's importer with the real dataset id
        "force": False,
        "queries": queries,
        "form_data": form_data,
        "result_format": "json",
        "result_type": "full",
    }


def _label(metric: Any) -> str:
    return metric if isinstance(metric, str) else metric.get("label") or metric.get("sqlExpression", "")


def bundle(rendered: dict[str, dict[str, Any]], kind: str) -> dict[str, str]:
    """Contents of one import command: every asset file plus the metadata.yaml naming ``kind``'s model."""
    contents = {name: yaml.safe_dump(a, sort_keys=False) for name, a in rendered.items()}
    contents["metadata.yaml"] = yaml.safe_dump({"version": EXPORT_VERSION, "type": MODEL_TYPES[kind]})
    return contents


# --- inside Superset --------------------------------------------------------------------------------


def _owner(username: str) -> Any:
    """The service account that owns the imported assets (inactive: it cannot sign in)."""
    from superset import security_manager

    user = security_manager.find_user(username=username)
    if user is None:
        admin = security_manager.find_role("Admin")
        user = security_manager.add_user(
            username=username,
            first_name="Dashboards",
            last_name="as code",
            email=f"{username}@localhost",
            role=admin,
            password=secrets.token_urlsafe(32),  # never stored elsewhere; the account is inactive anyway
        )
        if not user:
            raise ImportError_(f"could not create the service account {username}")
        user.active = False
        from superset.extensions import db

        db.session.commit()
    return user


def _snapshot(rendered: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Superset's own export of these assets (by uuid), without the export timestamp."""
    from superset.commands.chart.export import ExportChartsCommand
    from superset.commands.dashboard.export import ExportDashboardsCommand
    from superset.commands.database.export import ExportDatabasesCommand
    from superset.commands.dataset.export import ExportDatasetsCommand
    from superset.connectors.sqla.models import SqlaTable
    from superset.extensions import db
    from superset.models.core import Database
    from superset.models.dashboard import Dashboard
    from superset.models.slice import Slice

    models = {"databases": Database, "datasets": SqlaTable, "charts": Slice, "dashboards": Dashboard}
    commands = {
        "databases": ExportDatabasesCommand,
        "datasets": ExportDatasetsCommand,
        "charts": ExportChartsCommand,
        "dashboards": ExportDashboardsCommand,
    }
    snap: dict[str, str] = {}
    for kind in KINDS:
        uuids = [str(a["uuid"]) for n, a in rendered.items() if n.startswith(kind + "/")]
        found = db.session.query(models[kind]).filter(models[kind].uuid.in_(uuids)).all()
        ids = [m.id for m in found]
        if kind == "databases":  # exports mask the password: compare a hash of the stored one
            for m in found:
                snap[f"password:{m.uuid}"] = hashlib.sha256((m.password or "").encode()).hexdigest()
        # Present assets only: the first import finds none.
        for name, content in commands[kind](ids, export_related=False).run() if ids else []:
            if name != "metadata.yaml":
                snap[f"{kind}:{name}"] = content()
    return snap


def import_assets(rendered: dict[str, dict[str, Any]], password: str | None, owner: str) -> bool:
    """Import every kind with overwrite; True if Superset's export of the assets changed."""
    from flask import g
    from superset.commands.chart.importers.dispatcher import ImportChartsCommand
    from superset.commands.dashboard.importers.dispatcher import ImportDashboardsCommand
    from superset.commands.database.importers.dispatcher import ImportDatabasesCommand
    from superset.commands.dataset.importers.dispatcher import ImportDatasetsCommand

    g.user = _owner(owner)
    before = _snapshot(rendered)
    passwords = {n: password for n in rendered if n.startswith("databases/")} if password is not None else None
    commands = {
        "databases": ImportDatabasesCommand,
        "datasets": ImportDatasetsCommand,
        "charts": ImportChartsCommand,
        "dashboards": ImportDashboardsCommand,
    }
    for kind in KINDS:
        try:
            commands[kind](bundle(rendered, kind), overwrite=True, passwords=passwords).run()
        except Exception as exc:  # noqa: BLE001 - Superset raises many kinds; report one line
            detail = getattr(exc, "normalized_messages", lambda: None)() or str(exc)
            raise ImportError_(f"importing {kind} failed: {_one_line(detail)}") from exc
    return _snapshot(rendered) != before


def _one_line(detail: Any) -> str:
    text = json.dumps(detail) if not isinstance(detail, str) else detail
    return (text.strip().splitlines() or [""])[0][:500]


def _counts(rendered: Iterable[str]) -> dict[str, int]:
    names = list(rendered)
    return {kind: sum(n.startswith(kind + "/") for n in names) for kind in KINDS}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", type=Path, default=ASSETS, help="asset tree (default: dashboards/assets)")
    ap.add_argument("--owner", default=DEFAULT_OWNER, help="service account owning the assets")
    ap.add_argument("--render-only", action="store_true", help="print the rendered assets as JSON; no Superset")
    args = ap.parse_args(argv)
    try:
        uri = os.environ.get("DASHBOARDS_MARTS_URI")
        if not uri:
            raise ImportError_("DASHBOARDS_MARTS_URI is not set (SQLAlchemy URI of the marts database)")
        password = None
        if pw_file := os.environ.get("DASHBOARDS_MARTS_PASSWORD_FILE"):
            try:
                password = Path(pw_file).read_text().rstrip("\n")
            except OSError as exc:
                raise ImportError_(f"cannot read DASHBOARDS_MARTS_PASSWORD_FILE: {exc.strerror}") from None
            if not password:
                raise ImportError_(f"DASHBOARDS_MARTS_PASSWORD_FILE {pw_file} is empty")
        schema = os.environ.get("DASHBOARDS_MARTS_SCHEMA", "marts")
        rendered = render(load_assets(args.assets), uri, schema, with_password=password is not None)
        if args.render_only:
            print(json.dumps(rendered, indent=1, sort_keys=True, default=str))
            return 0
        if not os.environ.get("SUPERSET_CONFIG_PATH"):
            raise ImportError_("SUPERSET_CONFIG_PATH is not set (the superset_config.py of the instance)")
        from superset.app import create_app

        app = create_app()
        with app.app_context():
            changed = import_assets(rendered, password, args.owner)
    except ImportError_ as exc:
        print(f"superset_import: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"changed": changed, **_counts(rendered)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
