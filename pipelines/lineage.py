"""OpenLineage events for every pipeline step (openlineage-python's client and generated facet classes).

One pipeline run is the parent job ``lakehouse.run``; each step is a child job with its own run id and a
``parent`` facet pointing at it: ``lakehouse.ingest``, ``lakehouse.validate``, ``lakehouse.dbt.<model>`` (one per
dbt model) and ``lakehouse.publish_marts``. Each emits START then COMPLETE or FAIL (with an ``errorMessage``
facet). Datasets are named per the OpenLineage naming conventions so events from different tools join up:

| where | namespace | name |
|---|---|---|
| local file | ``file://<host>`` | absolute path |
| S3 object / prefix | ``s3://<bucket>`` | key |
| PostgreSQL table | ``postgres://<host>:<port>`` | ``<database>.<schema>.<table>`` |
| DuckDB table | ``duckdb://<absolute path of the database file>`` | ``<database>.<schema>.<table>`` |

Transport (settings): ``file`` appends JSON lines to ``LAKEHOUSE_LINEAGE_FILE`` (default), ``http`` posts to
Marquez at ``LAKEHOUSE_MARQUEZ_URL`` (bearer token ``LAKEHOUSE_MARQUEZ_API_KEY`` if set), ``none`` emits nothing.
A lineage backend that is down never fails the pipeline: after the first failed delivery the run stops trying
(each try costs the client's retries), keeps every undelivered event in ``HOME/lineage/undelivered.jsonl`` for
replay, and reports the count in the run summary; the run ledger (the GMP record) is written regardless.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    data_quality_assertions_dataset,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    parent_run,
    processing_engine_run,
    schema_dataset,
)
from openlineage.client.serde import Serde
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport
from openlineage.client.transport.noop import NoopConfig, NoopTransport
from openlineage.client.transport.transport import Transport
from openlineage.client.uuid import generate_new_uuid

from pipelines.settings import Settings

log = logging.getLogger(__name__)

PRODUCER = "https://github.com/cgt-lakehouse/cgt-lakehouse/tree/main/pipelines"
PARENT_JOB = "lakehouse.run"
INTEGRATION = "CGT_LAKEHOUSE"


def new_run_id() -> str:
    """A new run id: a UUIDv7 (time-ordered), valid as an OpenLineage runId and readable in the ledger."""
    return str(generate_new_uuid())


# --- dataset naming -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetRef:
    """A dataset as OpenLineage names it, plus what we know about it in this run."""

    namespace: str
    name: str
    rows: int | None = None
    fields: tuple[tuple[str, str], ...] = ()  # (column, type) for the schema facet
    assertions: tuple[tuple[str, bool, str | None], ...] = ()  # (expectation, success, column) for inputs

    @property
    def uri(self) -> str:
        return f"{self.namespace.rstrip('/')}/{self.name.lstrip('/')}"


def file_dataset(location: str | Path, **kw: Any) -> DatasetRef:
    """A file or directory: ``s3://bucket/key`` stays in its bucket's namespace, a local path gets this host's."""
    text = str(location)
    if text.startswith("s3://"):
        parsed = urlparse(text)
        return DatasetRef(f"s3://{parsed.netloc}", parsed.path.lstrip("/") or "/", **kw)
    return DatasetRef(f"file://{socket.gethostname()}", str(Path(text).resolve()), **kw)


def _libpq_params(dsn: str) -> dict[str, str]:
    if "://" in dsn:
        parsed = urlparse(dsn)
        return {"host": parsed.hostname or "localhost", "port": str(parsed.port or 5432), "dbname": parsed.path[1:]}
    params: dict[str, str] = {}
    for part in dsn.split():
        key, _, value = part.partition("=")
        params[key.strip()] = value.strip().strip("'")
    return params


def postgres_dataset(dsn: str, schema: str, table: str, **kw: Any) -> DatasetRef:
    """A PostgreSQL table, from the libpq DSN (keyword or URL form) that reaches it."""
    p = _libpq_params(dsn)
    host = p.get("host") or p.get("hostaddr") or "localhost"
    if host.startswith("/"):  # unix socket directory: name the machine instead
        host = socket.gethostname()
    return DatasetRef(
        f"postgres://{host}:{p.get('port', '5432')}", f"{p.get('dbname', 'postgres')}.{schema}.{table}", **kw
    )


def duckdb_dataset(db_path: str | Path, schema: str, table: str, **kw: Any) -> DatasetRef:
    """A table in a DuckDB database file (DuckDB names the database after the file's stem)."""
    path = Path(db_path).resolve()
    return DatasetRef(f"duckdb://{path}", f"{path.stem}.{schema}.{table}", **kw)


# --- emitting --------------------------------------------------------------------------------------


def transport_for(settings: Settings) -> Transport:
    if settings.lineage_transport == "file":
        path = Path(settings.lineage_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileTransport(FileConfig(log_file_path=str(path), append=True))
    if settings.lineage_transport == "http":
        key = settings.marquez_api_key.get_secret_value() if settings.marquez_api_key else None
        auth = ApiKeyTokenProvider({"api_key": key}) if key else None
        config = HttpConfig(url=settings.marquez_url, timeout=10.0)
        if auth:
            config.auth = auth
        return HttpTransport(config)
    return NoopTransport(NoopConfig())


@dataclass
class StepRun:
    """One child job's run: set ``inputs``/``outputs`` before the block ends; they go into COMPLETE."""

    name: str
    run_id: str
    inputs: list[DatasetRef] = field(default_factory=list)
    outputs: list[DatasetRef] = field(default_factory=list)


class Lineage:
    """Emits the OpenLineage events of one pipeline run."""

    def __init__(self, settings: Settings, transport: Transport | None = None) -> None:
        self.namespace = settings.lineage_namespace
        self.client = OpenLineageClient(transport=transport or transport_for(settings))
        self.spool = Path(settings.home) / "lineage" / "undelivered.jsonl"
        self.emitted = 0
        self.undelivered = 0
        self.errors: list[str] = []

    def emit(
        self,
        state: RunState,
        job_name: str,
        run_id: str,
        *,
        parent_run_id: str | None = None,
        inputs: Sequence[DatasetRef] = (),
        outputs: Sequence[DatasetRef] = (),
        event_time: datetime | None = None,
        error: str | None = None,
        job_type: str = "TASK",
    ) -> None:
        run_facets: dict[str, Any] = {
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                version=_package_version(), name="cgt-lakehouse-pipelines", openlineageAdapterVersion=_ol_version()
            )
        }
        if parent_run_id and parent_run_id != run_id:
            run_facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=parent_run_id),
                job=parent_run.Job(namespace=self.namespace, name=PARENT_JOB),
            )
        if error:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error, programmingLanguage="PYTHON"
            )
        event = RunEvent(
            eventType=state,
            eventTime=(event_time or datetime.now(UTC)).isoformat(),
            run=Run(runId=run_id, facets=run_facets),
            job=Job(
                namespace=self.namespace,
                name=job_name,
                facets={
                    "jobType": job_type_job.JobTypeJobFacet(
                        processingType="BATCH", integration=INTEGRATION, jobType=job_type
                    )
                },
            ),
            inputs=[_input(d) for d in inputs],
            outputs=[_output(d) for d in outputs],
            producer=PRODUCER,
        )
        if not self.errors:
            try:
                self.client.emit(event)
                self.emitted += 1
                return
            except Exception as exc:  # noqa: BLE001 - any transport failure is reported, never fatal
                message = f"lineage event {job_name} {state.value} not delivered: {str(exc).splitlines()[0]}"
                log.warning(message)
                self.errors.append(message)
        self.undelivered += 1
        self.spool.parent.mkdir(parents=True, exist_ok=True)
        with self.spool.open("a") as f:
            f.write(Serde.to_json(event) + "\n")

    @contextmanager
    def step(self, name: str, parent_run_id: str, job_type: str = "TASK") -> Iterator[StepRun]:
        """START now; COMPLETE with the step's datasets when the block ends, FAIL (and re-raise) on error."""
        step = StepRun(name=name, run_id=new_run_id())
        self.emit(RunState.START, name, step.run_id, parent_run_id=parent_run_id, job_type=job_type)
        error = None
        try:
            yield step
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.emit(
                RunState.FAIL if error else RunState.COMPLETE,
                name,
                step.run_id,
                parent_run_id=parent_run_id,
                inputs=step.inputs,
                outputs=step.outputs,
                error=error,
                job_type=job_type,
            )

    def completed_step(
        self,
        name: str,
        parent_run_id: str,
        *,
        started_at: datetime,
        ended_at: datetime,
        inputs: Sequence[DatasetRef],
        outputs: Sequence[DatasetRef],
        error: str | None = None,
        job_type: str = "MODEL",
    ) -> None:
        """START and COMPLETE/FAIL, after the fact, for a step another tool ran (each dbt model)."""
        run_id = new_run_id()
        self.emit(RunState.START, name, run_id, parent_run_id=parent_run_id, event_time=started_at, job_type=job_type)
        self.emit(
            RunState.FAIL if error else RunState.COMPLETE,
            name,
            run_id,
            parent_run_id=parent_run_id,
            inputs=inputs,
            outputs=outputs,
            event_time=ended_at,
            error=error,
            job_type=job_type,
        )


def _input(d: DatasetRef) -> InputDataset:
    facets: dict[str, Any] = {}
    if d.fields:
        facets["schema"] = _schema(d)
    input_facets: dict[str, Any] = {}
    if d.assertions:
        input_facets["dataQualityAssertions"] = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
            assertions=[
                data_quality_assertions_dataset.Assertion(assertion=a, success=ok, column=col)
                for a, ok, col in d.assertions
            ]
        )
    return InputDataset(namespace=d.namespace, name=d.name, facets=facets, inputFacets=input_facets)


def _output(d: DatasetRef) -> OutputDataset:
    facets: dict[str, Any] = {"schema": _schema(d)} if d.fields else {}
    output_facets: dict[str, Any] = {}
    if d.rows is not None:
        output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=d.rows
        )
    return OutputDataset(namespace=d.namespace, name=d.name, facets=facets, outputFacets=output_facets)


def _schema(d: DatasetRef) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in d.fields]
    )


def _package_version() -> str:
    from pipelines.ledger import package_version

    return package_version()


def _ol_version() -> str:
    from importlib.metadata import version

    return version("openlineage-python")
