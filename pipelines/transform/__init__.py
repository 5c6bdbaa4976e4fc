"""Transform stage: dbt (seed, run, test) over the validated landing Parquet, on DuckDB.

``build(settings, run_id, select=None)`` runs ``dbt build`` in-process through dbt's programmatic API with a
manifest parsed once (``prepare_manifest``), and returns a ``DbtBuildResult``: per model its layer, inputs, the
relation it wrote (with its OpenLineage dataset namespace/name), status, rows, duration and test results.

Marts are written by dbt straight into the marts database attached to DuckDB (a DuckDB file, or PostgreSQL via
DuckDB's postgres extension), so there is no separate publication step: ``publish_marts`` is not needed and the
mart models' results are the publication record. See docs/transform.md.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines import duck
from pipelines.lineage import DatasetRef, duckdb_dataset, file_dataset, postgres_dataset
from pipelines.resources import Resources
from pipelines.settings import Settings
from pipelines.transform import publish
from pipelines.transform.project import (
    DBT_PROJECT_DIR,
    dbt_env,
    dbt_vars,
    parse_fingerprint,
    work_db_path,
)

__all__ = [
    "DbtBuildResult",
    "Dataset",
    "ModelResult",
    "TestResult",
    "TransformError",
    "build",
    "prepare_manifest",
]

LAYERS = ("staging", "intermediate", "curated", "marts")
_ENV_LOCK = threading.Lock()  # os.environ is process-wide: one dbt invocation at a time per process


class TransformError(RuntimeError):
    """dbt could not run at all (bad project, unreachable database); model/test failures are in the result."""


# Datasets are named in one place, pipelines.lineage (OpenLineage naming conventions).
Dataset = DatasetRef


@dataclass(frozen=True)
class TestResult:
    name: str
    status: str  # pass | fail | warn | error | skipped
    failures: int | None
    message: str | None
    model: str | None  # the model (or seed) the test is attached to, None for source tests
    duration_s: float = 0.0


@dataclass
class ModelResult:
    name: str  # dbt model / seed name
    layer: str  # seed | staging | intermediate | curated | marts
    relation: str  # database.schema.identifier as DuckDB names it
    inputs: list[Dataset]
    output: Dataset
    status: str  # success | error | skipped
    rows: int | None
    duration_s: float
    message: str | None = None
    tests: list[TestResult] = field(default_factory=list)


@dataclass
class DbtBuildResult:
    run_id: str
    success: bool
    models: list[ModelResult]
    tests: list[TestResult]
    duration_s: float
    error: str | None = None  # set when dbt itself could not run
    # Write-audit-publish (ADR 0160): marts copied from the audit schema to the live one (all tests passed), or
    # curated tables put back to the snapshot before the build (it failed).
    published: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)

    @property
    def failed_models(self) -> list[ModelResult]:
        return [m for m in self.models if m.status != "success"]

    @property
    def failed_tests(self) -> list[TestResult]:
        return [t for t in self.tests if t.status in ("fail", "error")]


# --- manifest ---------------------------------------------------------------------------------------------------


def _target_dir(settings: Settings | None) -> Path:
    """dbt's target dir: the project's (build time) or HOME/dbt/target (runs; keeps the install read-only)."""
    if settings is None:
        return DBT_PROJECT_DIR / "target"
    return (Path(settings.home) / "dbt" / "target").resolve()


def prepare_manifest(settings: Settings | None = None, target: Path | None = None) -> Path:
    """Run ``dbt parse`` into ``target`` (default: the project's target dir) and return its ``manifest.json``.

    For dagster-dbt at build/deploy time (no database is touched). ``build`` parses in-process instead (see
    ``_manifest``): dbt cannot run generic tests from a manifest re-read from JSON.
    """
    target = target or _target_dir(None)
    _parse(settings or Settings(), target)
    return target / "manifest.json"


def _parse(settings: Settings, target: Path) -> Any:
    """``dbt parse`` (partial when ``target`` holds a previous parse) returning the in-memory manifest. No run vars
    are passed: changed vars would force a full re-parse every run; they are applied when models compile."""
    target.mkdir(parents=True, exist_ok=True)
    with dbt_environment(dbt_env(settings)):
        result = _runner().invoke(["parse", *_common_args(settings, target)])
    if not result.success or result.result is None:
        raise TransformError(f"dbt parse failed: {_first_line(result.exception)}")
    return result.result


_MANIFEST_CACHE: dict[str, Any] = {}


def _manifest(settings: Settings) -> Any:
    """The parsed manifest, kept per process and parsed again only when the project files changed."""
    fingerprint = parse_fingerprint(settings)
    if fingerprint not in _MANIFEST_CACHE:
        _MANIFEST_CACHE.clear()
        _MANIFEST_CACHE[fingerprint] = _parse(settings, _target_dir(settings))
    return _MANIFEST_CACHE[fingerprint]


# --- build ------------------------------------------------------------------------------------------------------


def build(
    settings: Settings | Resources, run_id: str, select: str | None = None, *, full_refresh: bool = False
) -> DbtBuildResult:
    """Run ``dbt build`` (seeds, models, tests, unit tests) for ``select`` (dbt selection syntax; all if None).

    Every curated and mart row written gets ``_run_id = run_id``. Incremental models (``ducklake_incremental``)
    take only new landing files unless ``full_refresh``. Model and test failures are reported in the result
    (``success`` False), not raised; ``TransformError`` means dbt could not run at all.
    """
    if not run_id or not run_id.strip():
        raise ValueError("build() needs a run id: every curated and mart row records the run that wrote it")
    res = Resources.of(settings)
    settings = res.settings
    started = time.perf_counter()
    manifest = _manifest(settings)
    target = _target_dir(settings)
    args = ["build", *_common_args(settings, target), "--vars", json.dumps(dbt_vars(settings, run_id))]
    if select:
        args += ["--select", select]
    if full_refresh:
        args.append("--full-refresh")
    _prepare_local_dirs(settings)
    before = publish.lake_snapshot(res)
    with dbt_environment(dbt_env(settings)):
        try:
            result = _runner(manifest).invoke(args)
        finally:
            _close_dbt_duckdb()
    if result.result is None:
        publish.restore_curated(res, before, _curated_written(settings, manifest))
        cause = result.exception if isinstance(result.exception, BaseException) else None
        raise TransformError(f"dbt build could not run: {_first_line(result.exception)}") from cause
    models, tests = _collect(settings, manifest, result.result.results)
    _count_rows(res, models)
    built = DbtBuildResult(
        run_id=run_id,
        success=bool(result.success),
        models=models,
        tests=tests,
        duration_s=0.0,
        error=None if result.success else _summarise_failures(models, tests),
    )
    if built.success:
        marts = [m.relation.split(".")[-1] for m in models if m.layer == "marts" and m.status == "success"]
        built.published = publish.publish_marts(settings, marts)
    else:
        curated = [m.relation.split(".")[-1] for m in models if m.layer == "curated" and m.status == "success"]
        built.restored = publish.restore_curated(res, before, curated)
    built.duration_s = time.perf_counter() - started
    return built


def _curated_written(settings: Settings, manifest: Any) -> list[str]:
    """Every curated table of the project (when dbt died without results, any of them may have been written)."""
    return [n.alias for n in manifest.nodes.values() if n.resource_type == "model" and _layer(n) == "curated"]


def _runner(manifest: Any = None):
    from dbt.cli.main import dbtRunner

    return dbtRunner(manifest=manifest)


def _common_args(settings: Settings, target: Path) -> list[str]:
    return [
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(target),
        "--log-path",
        str(target.parent / "logs"),
        "--quiet",
        "--no-use-colors",
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
    ]


def _prepare_local_dirs(settings: Settings) -> None:
    from pipelines import control, ledger

    # The data-integrity marts read the control database (attached read-only): make sure its tables exist.
    ledger.ensure_schema(control.engine(settings))
    work_db_path(settings).parent.mkdir(parents=True, exist_ok=True)
    if settings.catalog_backend == "duckdb":
        Path(settings.catalog_path).parent.mkdir(parents=True, exist_ok=True)
    if settings.marts_backend == "duckdb":
        Path(settings.marts_path).parent.mkdir(parents=True, exist_ok=True)
    if settings.lake_backend == "local":
        Path(duck.curated_data_path(settings)).mkdir(parents=True, exist_ok=True)


@contextmanager
def dbt_environment(env: dict[str, str]) -> Iterator[None]:
    """Expose ``env`` (the settings as profiles.yml / the dbt plugin read them) to one in-process dbt invocation:
    set for its duration, then restored, one invocation at a time per process."""
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _close_dbt_duckdb() -> None:
    """Close dbt-duckdb's process-wide DuckDB instance (profile keep_open) so the catalog/marts files are
    released for the next writer; dbt-duckdb has no public call for this."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


def _first_line(exc: BaseException | None) -> str:
    return str(exc).strip().splitlines()[0] if exc and str(exc).strip() else repr(exc)


def _summarise_failures(models: list[ModelResult], tests: list[TestResult], fallback: str = "dbt build failed") -> str:
    """The failed models and tests, one ``name: status`` each; ``fallback`` where none is named."""
    parts = [f"{m.name}: {m.status}" for m in models if m.status != "success"]
    parts += [f"{t.name}: {t.status}" for t in tests if t.status in ("fail", "error")]
    return "; ".join(parts) or fallback


# --- result -----------------------------------------------------------------------------------------------------


def _layer(node: Any) -> str:
    if node.resource_type == "seed":
        return "seed"
    folder = node.fqn[1] if len(node.fqn) > 2 else ""
    return folder if folder in LAYERS else "other"


def _dataset_for_relation(settings: Settings, layer: str, database: str, schema: str, table: str) -> Dataset:
    """OpenLineage dataset of a relation dbt wrote (openlineage-dbt gets these wrong; see docs/lineage.md)."""
    if layer == "curated":
        # A DuckLake table is its data files: DATA_PATH/<schema>/<table>/ (local dir or S3 prefix).
        return file_dataset(f"{duck.curated_data_path(settings)}{schema}/{table}")
    if layer == "marts":
        # Named where it is published (the live schema), not the audit schema dbt writes it to (ADR 0160).
        schema = settings.marts_schema
        if settings.marts_backend == "postgres":
            return postgres_dataset(settings.marts_pg_dsn.get_secret_value(), schema, table)
        return duckdb_dataset(Path(settings.marts_path), schema, table)
    return duckdb_dataset(work_db_path(settings), schema, table)


def _source_dataset(settings: Settings, node: Any) -> Dataset:
    if node.source_name == duck.CONTROL_ALIAS:
        # The control database's table: a PostgreSQL table, or the SQLite file itself.
        control = duck.control_attachment(settings)
        if control.options["TYPE"] == "postgres":
            return postgres_dataset(control.path, duck.control_schema(settings), node.name)
        return file_dataset(control.path)
    return file_dataset(duck.landing_location(settings, f"{node.source_name}__{node.name}"))


def _collect(settings: Settings, manifest: Any, results: list[Any]) -> tuple[list[ModelResult], list[TestResult]]:
    models: dict[str, ModelResult] = {}
    tests: list[TestResult] = []
    outputs: dict[str, Dataset] = {}

    def output_of(unique_id: str) -> Dataset:
        if unique_id in outputs:
            return outputs[unique_id]
        if unique_id.startswith("source."):
            ds = _source_dataset(settings, manifest.sources[unique_id])
        else:
            node = manifest.nodes[unique_id]
            ds = _dataset_for_relation(settings, _layer(node), node.database, node.schema, node.alias)
        outputs[unique_id] = ds
        return ds

    for res in results:
        node = res.node
        status = str(getattr(res.status, "value", res.status))
        if node.resource_type in ("model", "seed"):
            layer = _layer(node)
            models[node.unique_id] = ModelResult(
                name=node.name,
                layer=layer,
                relation=f"{node.database}.{node.schema}.{node.alias}",
                inputs=[output_of(uid) for uid in getattr(node.depends_on, "nodes", [])],
                output=output_of(node.unique_id),
                status=status,
                rows=None,
                duration_s=float(res.execution_time or 0.0),
                message=None if status == "success" else _message(res.message),
            )
        elif node.resource_type in ("test", "unit_test"):
            attached = getattr(node, "attached_node", None) or (
                node.depends_on.nodes[0] if getattr(node, "depends_on", None) and node.depends_on.nodes else None
            )
            tests.append(
                TestResult(
                    name=node.name,
                    status=status,
                    failures=res.failures,
                    message=None if status == "pass" else _message(res.message),
                    model=attached.split(".")[-1] if attached else None,
                    duration_s=float(res.execution_time or 0.0),
                )
            )
    for test in tests:
        for model in models.values():
            if model.name == test.model:
                model.tests.append(test)
    return list(models.values()), tests


def _message(text: str | None) -> str | None:
    """dbt's message without its colour codes and trailing blank lines."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text).strip() if text else text


def _count_rows(res: Resources, models: list[ModelResult]) -> None:
    """Row counts of what the build wrote (curated and marts tables, seeds); views are not counted."""
    wanted = [m for m in models if m.status == "success" and m.layer in ("seed", "curated", "marts")]
    if not wanted:
        return
    with res.duckdb(database=work_db_path(res.settings), read_only=True) as conn:
        for model in wanted:
            database, schema, table = model.relation.split(".")
            model.rows = conn.execute(f'select count(*) from "{database}"."{schema}"."{table}"').fetchone()[0]
