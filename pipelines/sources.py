"""The feed registry: every kind of file that lands, in one place.

A *feed* is one export type of one source system (``<system>__<entity>``, the same name the dbt staging model
uses: ``stg_<system>__<entity>``). The registry says where its files land, how they are read, which columns the
validated landing table has (types are DuckDB types), and which columns form its key. Generation, ingest,
validation, dbt sources and docs all read this module; nothing else hard-codes a feed.

Landing layout: ``LANDING/<system>/<pattern>``. Accepted rows of each raw file are written to
``LAKE/landing/<feed>/<sha256>.parquet`` with the lineage columns in ``LINEAGE_COLUMNS`` appended.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import PurePath
from typing import Literal

import pyarrow as pa

# Arrow type of each registry (DuckDB) type: how landing Parquet and generated files store them.
ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
}

FileFormat = Literal["csv", "controller_csv", "parquet", "json"]


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type: VARCHAR, DOUBLE, BIGINT, BOOLEAN, DATE, TIMESTAMPTZ
    nullable: bool = False
    description: str = ""


@dataclass(frozen=True)
class Feed:
    system: str
    entity: str
    pattern: str  # file-name glob inside LANDING/<system>/
    format: FileFormat
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    description: str
    has_instrument: bool = False  # the file names an instrument that must be in the equipment registry
    # The file-name convention's identity fields (regex, named groups batch_id / instrument_id / unit_op): where
    # the content names them too they must agree (chain of identity, pipelines/validate/integrity.py).
    name_identity: str | None = None

    @property
    def name(self) -> str:
        return f"{self.system}__{self.entity}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def matches(self, path: PurePath) -> bool:
        return path.parent.name == self.system and fnmatch(path.name, self.pattern)


C = Column

# The MES process steps (unit operations), in process order.
UNIT_OPERATIONS = (
    "apheresis_receipt",
    "selection",
    "activation",
    "transduction",
    "expansion",
    "harvest",
    "formulation",
    "cryopreservation",
    "qc_release",
)
# A controller export's name: <instrument>_<batch>_<unit operation>[_<YYYYMMDDTHHMM>Z][_<anything>].csv
_CONTROLLER_NAME = (
    r"(?P<instrument_id>[^_]+)_(?P<batch_id>[^_]+)_(?P<unit_op>"
    + "|".join(sorted(UNIT_OPERATIONS, key=len, reverse=True))
    + r")(?:_\d{8}T\d{4,6}Z)?(?:_[^.]*)?\.csv"
)

# The unit each measured parameter is recorded in (the registry's; ingest converts others it knows, ADR 0162).
PARAM_UNITS: dict[str, dict[str, str]] = {
    "bioreactor__readings": {
        "temperature": "degC",
        "ph": "pH",
        "dissolved_oxygen": "%sat",
        "co2": "%",
        "rocking_rate": "rpm",
        "gas_flow": "L/min",
        "perfusion_rate": "mL/day",
        "volume": "mL",
    },
    "analyzer__samples": {
        "vcd": "cells/mL",
        "viability": "%",
        "glucose": "g/L",
        "lactate": "g/L",
        "glutamine": "mmol/L",
    },
}

# Appended by ingest to every landing row: which raw file (by content hash) and which run produced it.
LINEAGE_COLUMNS: tuple[Column, ...] = (
    C("_source_sha256", "VARCHAR", description="SHA-256 of the raw file the row came from"),
    C("_source_file", "VARCHAR", description="file name as landed"),
    C("_source_row", "BIGINT", description="1-based data row number in the raw file"),
    C("_ingest_run_id", "VARCHAR", description="run id of the ingest that accepted the row"),
    C("_ingested_at", "TIMESTAMPTZ", description="UTC time the row was accepted"),
    C(
        "_dq_flags",
        "VARCHAR",
        nullable=True,
        description="';'-joined names of flag-policy expectations it failed",
    ),
)

FEEDS: tuple[Feed, ...] = (
    Feed(
        "apheresis",
        "collections",
        "collections_*.csv",
        "csv",
        (
            C("din", "VARCHAR", description="donation identification number (ISBT 128)"),
            C("coi_id", "VARCHAR", description="chain-of-identity id of the patient therapy"),
            C("patient_id", "VARCHAR", description="pseudonymised patient id"),
            C("product_code", "VARCHAR"),
            C("collection_site", "VARCHAR"),
            C("collected_at", "TIMESTAMPTZ"),
            C("received_at", "TIMESTAMPTZ", description="receipt at the manufacturing site"),
            C("cd3_count", "DOUBLE", description="CD3+ cells collected"),
            C("volume_ml", "DOUBLE"),
        ),
        ("din",),
        "Apheresis collections as exported by the collection centre's LIMS (CSV).",
    ),
    Feed(
        "mes",
        "batches",
        "batches_*.csv",
        "csv",
        (
            C("batch_id", "VARCHAR"),
            C("coi_id", "VARCHAR"),
            C("din", "VARCHAR"),
            C("product_code", "VARCHAR"),
            C("site", "VARCHAR"),
            C("process_version", "VARCHAR"),
            C("started_at", "TIMESTAMPTZ"),
            C("ended_at", "TIMESTAMPTZ", nullable=True),
            C("disposition", "VARCHAR", description="in_process | released | rejected | exception_release"),
            C("disposition_at", "TIMESTAMPTZ", nullable=True),
        ),
        ("batch_id",),
        "Batch records from the MES (CSV).",
    ),
    Feed(
        "mes",
        "process_steps",
        "process_steps_*.csv",
        "csv",
        (
            C("batch_id", "VARCHAR"),
            C("step_seq", "BIGINT"),
            C(
                "step_name",
                "VARCHAR",
                description=" | ".join(UNIT_OPERATIONS),
            ),
            C("started_at", "TIMESTAMPTZ"),
            C("ended_at", "TIMESTAMPTZ", nullable=True),
            C("operator_id", "VARCHAR"),
            C("equipment_id", "VARCHAR", nullable=True),
            C(
                "material_lot_ids",
                "VARCHAR",
                nullable=True,
                description="';'-separated material lots consumed",
            ),
            C("viable_cells_in", "DOUBLE", nullable=True),
            C("viable_cells_out", "DOUBLE", nullable=True),
        ),
        ("batch_id", "step_seq"),
        "Process step executions from the MES (CSV).",
    ),
    Feed(
        "bioreactor",
        "readings",
        "*.csv",
        "controller_csv",
        (
            C("batch_id", "VARCHAR"),
            C("unit_op", "VARCHAR"),
            C("equipment_id", "VARCHAR"),
            C(
                "param",
                "VARCHAR",
                description="temperature | ph | dissolved_oxygen | co2 | rocking_rate | "
                "gas_flow | perfusion_rate | volume",
            ),
            C("ts_utc", "TIMESTAMPTZ"),
            C("value", "DOUBLE", nullable=True),
            C("unit", "VARCHAR"),
            C("quality", "VARCHAR", description="controller quality code: good | uncertain | bad"),
        ),
        ("batch_id", "equipment_id", "param", "ts_utc"),
        "Online bioreactor parameters at 1 min: the controller's wide CSV export with '# key: value' metadata "
        "lines and a units row, melted to long format at ingest.",
        has_instrument=True,
        name_identity=_CONTROLLER_NAME,
    ),
    Feed(
        "analyzer",
        "samples",
        "samples_*.parquet",
        "parquet",
        (
            C("sample_id", "VARCHAR"),
            C("batch_id", "VARCHAR"),
            C("instrument_id", "VARCHAR"),
            C("sampled_at", "TIMESTAMPTZ"),
            C("culture_day", "BIGINT"),
            C("param", "VARCHAR", description="vcd | viability | glucose | lactate | glutamine"),
            C("value", "DOUBLE", nullable=True),
            C("unit", "VARCHAR"),
            C("analyst_id", "VARCHAR"),
        ),
        ("sample_id", "param"),
        "Daily offline in-process samples (cell counter, metabolite analyzer), Parquet.",
        has_instrument=True,
        name_identity=r"samples_(?P<batch_id>[^_]+)(?:_[^.]*)?\.parquet",
    ),
    Feed(
        "lims",
        "qc_results",
        "qc_results_*.csv",
        "csv",
        (
            C("sample_id", "VARCHAR"),
            C("batch_id", "VARCHAR"),
            C("test_code", "VARCHAR"),
            C(
                "attribute",
                "VARCHAR",
                description="viability | car_positive | cd3_positive | vcn | endotoxin | "
                "sterility | mycoplasma | rcl | residual_beads | ifng_potency",
            ),
            C("result_text", "VARCHAR", description="as reported, e.g. '82.1', '<0.05', 'Negative'"),
            C(
                "result_value",
                "DOUBLE",
                nullable=True,
                description="numeric value; NULL for pass/fail or censored",
            ),
            C("unit", "VARCHAR", nullable=True),
            C("sampled_at", "TIMESTAMPTZ"),
            C("tested_at", "TIMESTAMPTZ"),
            C("reviewed_at", "TIMESTAMPTZ", nullable=True),
            C("analyst_id", "VARCHAR"),
            C("method_version", "VARCHAR"),
        ),
        ("sample_id", "test_code"),
        "QC release results exported from the LIMS (CSV).",
    ),
    Feed(
        "qms",
        "deviations",
        "deviations_*.csv",
        "csv",
        (
            C("deviation_id", "VARCHAR"),
            C("batch_id", "VARCHAR", nullable=True),
            C("opened_at", "TIMESTAMPTZ"),
            C("closed_at", "TIMESTAMPTZ", nullable=True),
            C("category", "VARCHAR"),
            C("severity", "VARCHAR", description="minor | major | critical"),
            C("description", "VARCHAR"),
            C("capa_id", "VARCHAR", nullable=True),
            C("capa_due_date", "DATE", nullable=True),
            C("capa_closed_at", "TIMESTAMPTZ", nullable=True),
        ),
        ("deviation_id",),
        "Deviations and linked CAPAs from the QMS (CSV).",
    ),
    Feed(
        "erp",
        "material_lots",
        "material_lots_*.csv",
        "csv",
        (
            C("material_lot_id", "VARCHAR"),
            C("material_code", "VARCHAR"),
            C("material_name", "VARCHAR"),
            C("supplier", "VARCHAR"),
            C("expiry_date", "DATE"),
            C("received_at", "TIMESTAMPTZ"),
            C("status", "VARCHAR", description="released | quarantined | rejected"),
        ),
        ("material_lot_id",),
        "Material and reagent lots (vector, media, beads) from the ERP (CSV).",
    ),
    Feed(
        "logistics",
        "shipments",
        "shipments_*.json",
        "json",
        (
            C("shipment_id", "VARCHAR"),
            C("coi_id", "VARCHAR"),
            C("batch_id", "VARCHAR", nullable=True),
            C("direction", "VARCHAR", description="inbound_apheresis | outbound_product"),
            C("from_site", "VARCHAR"),
            C("to_site", "VARCHAR"),
            C("shipped_at", "TIMESTAMPTZ"),
            C("delivered_at", "TIMESTAMPTZ", nullable=True),
            C("min_temp_c", "DOUBLE", nullable=True),
            C("max_temp_c", "DOUBLE", nullable=True),
            C("temperature_excursion", "BOOLEAN"),
        ),
        ("shipment_id",),
        "Chain-of-custody shipments from the courier portal (JSON array of records).",
    ),
    Feed(
        "clinic",
        "infusions",
        "infusions_*.csv",
        "csv",
        (
            C("coi_id", "VARCHAR"),
            C("batch_id", "VARCHAR"),
            C("treatment_site", "VARCHAR"),
            C("infused_at", "TIMESTAMPTZ"),
            C("dose_cells", "DOUBLE", nullable=True),
        ),
        ("coi_id", "batch_id"),
        "Infusions reported by treatment centres (CSV).",
    ),
)

FEEDS_BY_NAME: dict[str, Feed] = {f.name: f for f in FEEDS}


def feed_for(path: PurePath) -> Feed | None:
    """The feed a landed file belongs to, by its directory and name; None if no feed claims it."""
    for feed in FEEDS:
        if feed.matches(path):
            return feed
    return None
