"""Materialize every asset of the code location with test resources (a temporary LAKEHOUSE_HOME)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from pipelines import ledger
from pipelines.definitions import defs as load_defs
from pipelines.defs.resources import LakehouseResource
from pipelines.settings import Settings

pytestmark = pytest.mark.slow


def test_materialize_all_assets(tmp_path):
    from pipelines.generate import generate

    settings = Settings(home=tmp_path / "home")
    generate(settings, Path(settings.landing_dir), scale=2, seed=7, fault_rate=0.05)
    defs = load_defs()
    job = defs.resolve_implicit_global_asset_job_def()
    instance = dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(
        instance=instance, resources={"lakehouse": LakehouseResource(home=str(settings.home))}
    )
    assert result.success

    materialized = {m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()}
    assert "raw_files" in materialized
    marts = [
        k for k, e in materialized.items() if e.materialization.metadata.get("layer") == dg.TextMetadataValue("marts")
    ]
    assert marts, "mart assets materialized"
    for key in marts:
        assert materialized[key].materialization.metadata["rows"].value > 0, key

    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    assert any(name == "great_expectations" for _, name in checks)
    dbt_checks = [c for (_, name), c in checks.items() if name != "great_expectations"]
    assert dbt_checks and all(c.passed for c in dbt_checks if c.severity == dg.AssetCheckSeverity.ERROR)

    # The Dagster run is one ledger run: its steps under the Dagster run id, folded to one status.
    engine = sa.create_engine(settings.control_db_url.get_secret_value())
    run = next(r for r in ledger.runs(engine) if r["run_id"] == result.run_id)
    assert run["status"] == "succeeded" and run["trigger"] == "dagster:manual"
    assert {"ingest", "validate", "transform"} <= set(run["stages"])
    assert ledger.verify(engine) == []


def test_failed_dbt_test_reaches_dagster_as_a_failed_check(tmp_path):
    """Write-audit-publish (ADR 0160) seen from Dagster: the build's failing test is a failed asset check, the
    models it built are observations (not materializations: nothing was published), and the step fails."""
    from pipelines.defs.dbt import dbt_models
    from tests.transform.dataset import write_dataset
    from tests.transform.landing import write_rows

    settings = Settings(home=tmp_path / "home")
    write_dataset(Path(settings.lake_dir))
    write_rows(
        Path(settings.lake_dir),
        "mes__batches",
        [dict(batch_id="B-WAP-BAD", coi_id=None, product_code="CT-019", disposition="in_process")],
    )
    result = dg.materialize(
        [dbt_models],
        instance=dg.DagsterInstance.ephemeral(),
        resources={"lakehouse": LakehouseResource(home=str(settings.home))},
        raise_on_error=False,
    )
    assert not result.success
    checks = {(c.asset_key.path[-1], c.check_name): c for c in result.get_asset_check_evaluations()}
    assert checks[("batches", "not_null_batches_coi_id")].passed is False
    assert checks[("batches", "unique_batches_batch_id")].passed is True
    assert result.get_asset_materialization_events() == []
    observed = {e.asset_key.path[-1] for e in result.get_asset_observation_events()}
    assert {"batches", "collections", "stg_mes__batches"} <= observed
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "not_null_batches_coi_id" in failure.event_specific_data.error.message
