"""Every dbt model and seed as a Dagster asset (dagster-dbt), built by ``pipelines.transform.build``.

The manifest is prepared at build time (``pipelines.transform.prepare_manifest``, run by the bundle build and
``make setup``); loading the code location only reads it, and parses once if it is missing (a fresh checkout).
dbt runs through the same runner call as ``lakehouse run --stage transform --stage publish`` (one implementation:
the incremental plan of ADR 0141, then the serving layer), in the ``duckdb_writer`` pool so no two runs write the
DuckDB files at once. dbt tests become asset checks.
"""

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from pipelines.defs.ingest import landing_key
from pipelines.defs.resources import DUCKDB_WRITER_POOL, TRANSIENT_RETRY, LakehouseResource, raise_for


@cache
def manifest_path() -> Path:
    """The dbt manifest the asset definitions are built from.

    A checkout keeps it in ``dbt/target``. An installed wheel is read-only (a root-owned release under
    ProtectSystem=strict), so there it lives under ``HOME/dbt/manifest/<parse fingerprint>/``: one per dbt
    project version, prepared by the dagster role at install time (loading the definitions once as the service
    user), so a release switch never reads another release's manifest.
    """
    from pipelines.paths import DBT_PROJECT_DIR, is_packaged
    from pipelines.settings import Settings
    from pipelines.transform import prepare_manifest
    from pipelines.transform.project import parse_fingerprint

    if not is_packaged(DBT_PROJECT_DIR):
        path = DBT_PROJECT_DIR / "target" / "manifest.json"
        return path if path.is_file() else prepare_manifest()
    settings = Settings()
    target = Path(settings.home).resolve() / "dbt" / "manifest" / parse_fingerprint(settings)[:16]
    path = target / "manifest.json"
    return path if path.is_file() else prepare_manifest(settings, target)


class LakehouseDbtTranslator(DagsterDbtTranslator):
    """dbt sources are our validated landing tables: ``source('mes','batches')`` -> ``landing/mes__batches``."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            feed = dbt_resource_props.get("meta", {}).get("feed") or (
                f"{dbt_resource_props['source_name']}__{dbt_resource_props['name']}"
            )
            return landing_key(feed)
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props["resource_type"] == "seed":
            return "master_data"
        return f"dbt_{fqn[1]}" if len(fqn) > 2 else "dbt"


TRANSLATOR = LakehouseDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


def _dbt_selection(context: dg.AssetExecutionContext) -> str | None:
    """None for the whole project, else the selected models/seeds by name (dbt node selection)."""
    if not context.is_subset:
        return None
    names = sorted(key.path[-1] for key in context.selected_asset_keys)
    return " ".join(names)


@dbt_assets(
    manifest=manifest_path(),
    dagster_dbt_translator=TRANSLATOR,
    pool=DUCKDB_WRITER_POOL,
    retry_policy=TRANSIENT_RETRY,
    op_tags={"lakehouse/writes": "duckdb"},
)
def dbt_models(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    """Materializations of what the build published; when its tests failed (nothing published, ADR 0160) the
    models it built are reported as observations, every test as an asset check, and then the step fails.

    transform and publish run in one step, as in `lakehouse run`: the serving layer (BI views, indexes, grants in
    the PostgreSQL marts) must follow every build, and an incremental build yields only the models it rebuilt, so a
    separate downstream asset would be skipped by Dagster whenever one was left out (ADR 0093)."""
    summary = lakehouse.run_stages(context, ("transform", "publish"), select=_dbt_selection(context), check=False)
    if summary.serving_views:
        context.log.info(f"serving layer: {', '.join(summary.serving_views)}")
    result = summary._results.get("transform")
    if result is None:  # skipped (nothing new) or dbt could not run
        raise_for(summary)
        return
    selected = context.selected_asset_keys
    keys = {key.path[-1]: key for key in selected}
    for m in result.models:
        key = keys.get(m.name)
        if key is None or m.status != "success":
            continue
        metadata = {
            "layer": m.layer,
            "relation": m.relation,
            "rows": dg.MetadataValue.int(m.rows) if m.rows is not None else dg.MetadataValue.null(),
            "duration_s": round(m.duration_s, 3),
            "lineage_dataset": f"{m.output.namespace}/{m.output.name}",
            "run_id": summary.run_id,
            "published": result.success,
        }
        if result.success:
            yield dg.MaterializeResult(asset_key=key, metadata=metadata)
        else:
            yield dg.AssetObservation(
                asset_key=key,
                description="built but not published: the build's tests failed (ADR 0160)",
                metadata={**metadata, "failed": result.error or ""},
            )
    wanted = set(context.selected_asset_check_keys)
    for t in result.tests:
        key = keys.get(t.model or "")
        if key is None or dg.AssetCheckKey(key, t.name) not in wanted:
            continue
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=t.name,
            passed=t.status == "pass",
            severity=dg.AssetCheckSeverity.WARN if t.status == "warn" else dg.AssetCheckSeverity.ERROR,
            metadata={"status": t.status, "failures": t.failures or 0, "message": t.message or ""},
        )
    raise_for(summary)
