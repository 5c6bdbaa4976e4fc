"""Classes of problems in files never seen before (byte-order marks, line endings, delimiters, concatenated
exports, multi-line text, header-only files, spreadsheet-style numbers, non-finite values), through the real
land -> validate path: each ends accepted as it should, or quarantined / rejected with a reason; none is guessed."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines import control
from pipelines.ingest import land
from pipelines.settings import Settings
from pipelines.sources import FEEDS_BY_NAME
from pipelines.validate import validate_pending

from .conftest import BR_ROWS, QC_HEADER, _sample, analyzer_parquet, controller

QC_ROW = "S-1,B-1,VIA-NC200,viability,{text},{value},%,2026-01-05T10:00:00Z,2026-01-06T10:00:00Z,,AN-1,v1"
DEV_HEADER = ",".join(FEEDS_BY_NAME["qms__deviations"].column_names)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", landing_dir=tmp_path / "landing", landing_settle_seconds=0)


def _ingest(settings: Settings, rel: str, data: bytes) -> dict:
    p = Path(settings.landing_dir) / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    land(settings, [p], "run-1")
    validate_pending(settings, "run-1")
    (got,) = [f for f in control.file_outcomes(control.engine(settings)) if f"{f['source_system']}/{f['file']}" == rel]
    return got


def _qc(*values: tuple[str, str], header: str = QC_HEADER, sep: str = ",", eol: str = "\n") -> bytes:
    rows = [QC_ROW.format(text=t, value=v).replace(",", sep) for t, v in values]
    return (header.replace(",", sep) + eol + "".join(r + eol for r in rows)).encode()


@pytest.mark.parametrize(
    ("variant", "data"),
    [
        ("utf-8 byte-order mark", b"\xef\xbb\xbf" + _qc(("91.2", "91.2"))),
        ("CRLF line endings", _qc(("91.2", "91.2"), eol="\r\n")),
        ("no newline after the last row", _qc(("91.2", "91.2"))[:-1]),
        ("blank lines at the end", _qc(("91.2", "91.2")) + b"\n\n"),
        (
            "columns in another order",
            _qc(("91.2", "91.2")).replace(b"sample_id,batch_id", b"batch_id,sample_id").replace(b"S-1,B-1", b"B-1,S-1"),
        ),
    ],
)
def test_harmless_variants_are_accepted(settings, variant, data):
    got = _ingest(settings, "lims/qc_results_2026-01.csv", data)
    assert (got["outcome"], got["rows_accepted"], got["rows_rejected"]) == ("accepted", 1, 0), variant


def test_a_header_only_export_is_accepted_with_no_rows(settings):
    got = _ingest(settings, "lims/qc_results_2026-01.csv", (QC_HEADER + "\n").encode())
    assert (got["outcome"], got["rows_accepted"]) == ("accepted", 0)


@pytest.mark.parametrize(("sep", "label"), [(";", "';'"), ("\t", "tab"), ("|", "'|'")])
def test_another_delimiter_is_named_not_guessed(settings, sep, label):
    got = _ingest(settings, "lims/qc_results_2026-01.csv", _qc(("91,2", "91,2"), sep=sep))
    assert (got["outcome"], got["reason_kind"]) == ("quarantined", "schema_drift")
    assert f"delimited by {label}, not ','" in got["reason"]


def test_concatenated_exports_are_unreadable(settings):
    one = _qc(("91.2", "91.2"))
    got = _ingest(settings, "lims/qc_results_2026-01.csv", one + one)
    assert (got["outcome"], got["reason_kind"]) == ("quarantined", "unreadable")
    assert "the header repeats as data row 2" in got["reason"]


def test_a_repeated_column_name_is_schema_drift(settings):
    header = QC_HEADER.replace("method_version", "unit")
    got = _ingest(settings, "lims/qc_results_2026-01.csv", _qc(("91.2", "91.2"), header=header))
    assert (got["outcome"], got["reason_kind"]) == ("quarantined", "schema_drift")
    assert "repeated unit" in got["reason"]


def test_quoted_text_may_span_lines(settings):
    row = 'DEV-1,B-1,2026-01-05T10:00:00Z,,process,minor,"Door opened;\nsample late, ""see log""",,,'
    got = _ingest(settings, "qms/deviations_2026-01.csv", (DEV_HEADER + "\n" + row + "\n").encode())
    assert (got["outcome"], got["rows_accepted"]) == ("accepted", 1), got["reason"]
    (landed,) = pq.read_table(got["landing_uri"]).to_pylist()
    assert landed["description"] == 'Door opened;\nsample late, "see log"'


@pytest.mark.parametrize(
    ("text", "value", "accepted"),
    [
        ("91.2", "1.2E+01", True),  # scientific notation is a number
        ("91.2", '"1,234.5"', False),  # thousands separator: which locale?
        ("91.2", "91.2%", False),
        ('"91,2"', '"91,2"', False),  # decimal comma
        ("91.2", "inf", False),
        ("91.2", "NaN", False),
        ("91.2", "#N/A", False),
        ("91.2", "#DIV/0!", False),
        ("91.2", "1e400", False),  # overflows a double
    ],
)
def test_spreadsheet_numbers_are_parsed_or_rejected_never_guessed(settings, text, value, accepted):
    got = _ingest(settings, "lims/qc_results_2026-01.csv", _qc((text, value)))
    assert got["outcome"] == "accepted"
    if accepted:
        assert (got["rows_accepted"], got["rows_rejected"]) == (1, 0)
    else:
        assert (got["rows_accepted"], got["rows_rejected"]) == (0, 1)
        assert "result_value_unparseable" in got["reason"]


@pytest.mark.parametrize("bad", ["inf", "-Infinity", "#N/A", "NaN", "null"])
def test_controller_values_that_are_not_finite_numbers_are_rejected(settings, bad):
    rows = [BR_ROWS[0].replace(",37.02,", f",{bad},"), *BR_ROWS[1:]]
    got = _ingest(settings, "bioreactor/BR-XURI-01_B-1_expansion.csv", controller(rows))
    assert got["outcome"] == "accepted" and got["rows_rejected"] == 1
    assert "temperature_unparseable: 1" in got["reason"]
    values = [r["value"] for r in pq.read_table(got["landing_uri"]).to_pylist() if r["param"] == "temperature"]
    assert all(v is None or math.isfinite(v) for v in values) and len(values) == 2


def test_parquet_values_that_are_not_finite_are_rejected(settings):
    rows = [_sample("SM-1", "viability", 92.0), _sample("SM-2", "viability", math.inf), _sample("SM-3", "vcd", None)]
    rows.append(_sample("SM-4", "viability", math.nan))  # a stored NaN, not a missing value
    got = _ingest(settings, "analyzer/samples_B-1.parquet", analyzer_parquet(rows))
    assert got["outcome"] == "accepted" and (got["rows_accepted"], got["rows_rejected"]) == (2, 2)
    assert "value_unparseable: 2" in got["reason"]
