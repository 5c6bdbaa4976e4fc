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
A lineage backend that is down never fails the pipeline and never loses an event. Over ``http`` every event is
written to the spool ``HOME/lineage/undelivered.jsonl`` (fsync) before it is sent, and the spool is sent oldest
first with retries and backoff (``LAKEHOUSE_LINEAGE_HTTP_RETRIES``); after a failed delivery the run stops trying
and keeps spooling, and the next emit of a later run (or ``lakehouse lineage-send``) sends what is waiting first.
An event the server refuses for good (400/422) is moved to ``HOME/lineage/rejected.jsonl`` with the answer, so
one bad event cannot block the rest. ``lakehouse status`` shows how many wait. The run ledger (the GMP record) is
written regardless.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
import urllib3
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


def landing_datasets(settings: Settings, verdicts: Sequence[Any]) -> list[DatasetRef]:
    """What validation wrote: one landing dataset per feed (``<lake>/landing/<feed>``, the name dbt's sources use,
    so raw file -> validate -> landing -> dbt joins up), with the rows accepted in this run."""
    from pipelines.duck import landing_location

    rows: dict[str, int] = {}
    for v in verdicts:
        if v.landing_uri:
            rows[v.feed] = rows.get(v.feed, 0) + v.rows_accepted
    return [file_dataset(landing_location(settings, feed), rows=n) for feed, n in rows.items()]


def duckdb_dataset(db_path: str | Path, schema: str, table: str, **kw: Any) -> DatasetRef:
    """A table in a DuckDB database file (DuckDB names the database after the file's stem)."""
    path = Path(db_path).resolve()
    return DatasetRef(f"duckdb://{path}", f"{path.stem}.{schema}.{table}", **kw)


# --- emitting --------------------------------------------------------------------------------------


def transport_for(settings: Settings) -> Transport:
    """The openlineage-python transport for ``file`` and ``none``; ``http`` goes through :class:`HttpDelivery`."""
    if settings.lineage_transport == "file":
        path = Path(settings.lineage_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileTransport(FileConfig(log_file_path=str(path), append=True))
    return NoopTransport(NoopConfig())


def spool_path(settings: Settings) -> Path:
    """Events not yet delivered, one JSON line each, oldest first."""
    return Path(settings.home) / "lineage" / "undelivered.jsonl"


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


def waiting(settings: Settings) -> dict[str, int]:
    """What ``lakehouse status`` shows: events waiting for delivery, and events the server refused (kept aside)."""
    spool = spool_path(settings)
    return {"waiting": _count_lines(spool), "rejected": _count_lines(spool.with_name("rejected.jsonl"))}


class DeliveryError(Exception):
    """The lineage server could not take an event now (down, 5xx after retries, 401/403, a redirect to sign-in)."""


class HttpDelivery:
    """Durable delivery to ``POST <marquez_url>/api/v1/lineage``: an event is on disk (the spool, fsync) before it
    is sent, and the spool is sent in order, oldest first, each POST retried with exponential backoff on connection
    errors and 429/5xx. Nothing is removed from the spool until the server answered 2xx. Processes sharing a HOME
    (Dagster steps) take turns through a lock file."""

    REFUSED_FOR_GOOD = (400, 422)  # the event itself is invalid: retrying can never succeed

    def __init__(self, settings: Settings) -> None:
        self.url = f"{str(settings.marquez_url).rstrip('/')}/api/v1/lineage"
        self.spool = spool_path(settings)
        self.rejected = self.spool.with_name("rejected.jsonl")
        self.headers = {"Content-Type": "application/json"}
        if settings.marquez_api_key:
            self.headers["Authorization"] = f"Bearer {settings.marquez_api_key.get_secret_value()}"
        retry = urllib3.util.Retry(
            total=settings.lineage_http_retries,
            backoff_factor=0.5,  # 0.5 s, 1 s, 2 s, ... between tries
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=("POST",),
            raise_on_status=False,
        )
        self.timeout = settings.lineage_http_timeout
        self.session = requests.Session()
        self.session.mount(self.url, requests.adapters.HTTPAdapter(max_retries=retry))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.spool.parent.mkdir(parents=True, exist_ok=True)
        with self.spool.with_suffix(".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def put(self, event_json: str) -> None:
        with self._locked(), self.spool.open("a") as f:
            f.write(event_json + "\n")
            f.flush()
            os.fsync(f.fileno())

    def send_waiting(self) -> tuple[int, int]:
        """Send the spool oldest first; stop at the first event that cannot be delivered now (DeliveryError, after
        the spool is rewritten with what is left). Returns (sent, left)."""
        with self._locked():
            lines = (
                [line for line in self.spool.read_text().splitlines() if line.strip()] if self.spool.exists() else []
            )
            sent = 0
            try:
                for line in lines:
                    self._post(line)
                    sent += 1
            finally:
                if sent:
                    tmp = self.spool.with_suffix(".tmp")
                    tmp.write_text("".join(f"{line}\n" for line in lines[sent:]))
                    os.replace(tmp, self.spool)
            return sent, len(lines) - sent

    def _post(self, line: str) -> None:
        try:
            # No redirects: a sign-in page answering 200 after a redirect would look like a delivery.
            resp = self.session.post(
                self.url, data=line, headers=self.headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise DeliveryError(str(exc).splitlines()[0]) from exc
        if 200 <= resp.status_code < 300:
            return
        if resp.status_code in self.REFUSED_FOR_GOOD:
            log.warning(
                "lineage server refused an event for good (HTTP %s); kept in %s", resp.status_code, self.rejected
            )
            record = {"status": resp.status_code, "answer": resp.text[:2000], "event": json.loads(line)}
            with self.rejected.open("a") as f:
                f.write(json.dumps(record) + "\n")
            return
        where = f" to {resp.headers.get('Location')}" if resp.is_redirect else ""
        raise DeliveryError(f"HTTP {resp.status_code}{where} from {self.url}")


def send_waiting(settings: Settings) -> tuple[int, int]:
    """``lakehouse lineage-send``: deliver what is waiting now. Returns (sent, left); raises DeliveryError."""
    return HttpDelivery(settings).send_waiting()


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
        # http always goes through the durable spool (a transport handed in, e.g. by Resources, is for file/none).
        self.delivery = HttpDelivery(settings) if settings.lineage_transport == "http" else None
        self.client = OpenLineageClient(transport=transport or transport_for(settings))
        self.spool = spool_path(settings)
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
        if self.delivery:
            self._deliver(event, job_name, state)
            return
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

    def _deliver(self, event: RunEvent, job_name: str, state: RunState) -> None:
        self.delivery.put(Serde.to_json(event))
        if self.errors:  # the server is known down in this run: spool only (each try costs the retries)
            self.undelivered += 1
            return
        try:
            sent, self.undelivered = self.delivery.send_waiting()
            self.emitted += sent
        except DeliveryError as exc:
            message = f"lineage event {job_name} {state.value} not delivered (kept in {self.spool}): {exc}"
            log.warning(message)
            self.errors.append(message)
            self.undelivered = _count_lines(self.spool)

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
