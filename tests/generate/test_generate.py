"""The synthetic data set: deterministic, parseable per the feed registry, realistic, faults as the truth says."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines.generate import CATALOG, generate, truth_path
from pipelines.generate.encode import ARROW_TYPES
from pipelines.generate.master import load_master
from pipelines.settings import Settings
from pipelines.sources import FEEDS_BY_NAME, feed_for

SEED = 20261123


def _run(tmp: Path, scale: int, fault_rate: float, seed: int = SEED):
    settings = Settings(home=tmp / "home")
    report = generate(settings, tmp / "landing", scale, seed, fault_rate)
    truth = json.loads(truth_path(settings).read_text(encoding="utf-8"))
    return report, truth


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The default demo data set: 50 batches, 5 % faults."""
    tmp = tmp_path_factory.mktemp("gen_default")
    report, truth = _run(tmp, 50, 0.05)
    return tmp / "landing", report, truth


@pytest.fixture(scope="module")
def heavy_run(tmp_path_factory):
    """Many faults of each kind (second instances take the other variants: Latin-1, missing+extra column)."""
    tmp = tmp_path_factory.mktemp("gen_heavy")
    report, truth = _run(tmp, 20, 0.4)
    return tmp / "landing", report, truth


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gen_clean")
    report, truth = _run(tmp, 12, 0.0)
    return tmp / "landing", report, truth


def read_controller_csv(path: Path) -> tuple[dict[str, str], pd.DataFrame, dict[str, str]]:
    """Reference reader for the documented controller layout: metadata, header row, units row, data rows."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    meta = {}
    i = 0
    while lines[i].startswith("# "):
        key, _, value = lines[i][2:].partition(": ")
        meta[key] = value
        i += 1
    header, units = lines[i].split(","), lines[i + 1].split(",")
    body = pd.read_csv(io.StringIO("\n".join(lines[i + 2 :])), header=None, names=header, dtype={"timestamp": str})
    return meta, body, dict(zip(header, units, strict=True))


def read_any(path: Path, feed_name: str) -> pd.DataFrame:
    feed = FEEDS_BY_NAME[feed_name]
    if feed.format == "parquet":
        return pq.read_table(path).to_pandas()
    if feed.format == "json":
        return pd.DataFrame(json.loads(path.read_bytes().decode("utf-8")))
    if feed.format == "controller_csv":
        return read_controller_csv(path)[1]
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path):
    _, truth_a = _run(tmp_path / "a", 4, 0.3)
    _, truth_b = _run(tmp_path / "b", 4, 0.3)
    _, truth_c = _run(tmp_path / "c", 4, 0.3, seed=SEED + 1)
    hashes = {e["file"]: e["sha256"] for e in truth_a["files"]}
    assert hashes == {e["file"]: e["sha256"] for e in truth_b["files"]}
    assert truth_a == truth_b
    for e in truth_a["files"]:  # the truth's hashes are the bytes on disk
        assert hashlib.sha256((tmp_path / "a" / "landing" / e["file"]).read_bytes()).hexdigest() == e["sha256"]
    other = {e["file"]: e["sha256"] for e in truth_c["files"]}
    assert set(hashes.values()) != set(other.values())


def test_every_file_belongs_to_its_feed_and_readable_files_have_the_registry_columns(default_run):
    landing, report, truth = default_run
    assert {p.relative_to(landing).as_posix() for p in report.files} == {e["file"] for e in truth["files"]}
    misfiled = {f["file"] for f in truth["faults"] if f["kind"] == "misfiled"}
    for e in truth["files"]:
        path = landing / e["file"]
        if e["file"] in misfiled:  # under another feed's path on purpose: no feed, or another, claims it
            assert getattr(feed_for(path), "name", None) != e["feed"]
            continue
        assert feed_for(path).name == e["feed"]
        if e["expected_outcome"].startswith("quarantined") or e["expected_outcome"] == "duplicate":
            continue
        df = read_any(path, e["feed"])
        assert len(df) == e["data_rows"], e["file"]
        feed = FEEDS_BY_NAME[e["feed"]]
        if feed.format == "controller_csv":
            assert list(df.columns) == ["timestamp", *truth["summary"]["bioreactor_parameters"], "quality"]
        else:
            assert list(df.columns) == feed.column_names, e["file"]
            if e["expected_outcome"] == "accepted":
                assert_registry_types(df, feed, e["file"])


def assert_registry_types(df: pd.DataFrame, feed, name: str) -> None:
    """Each value is what the registry's DuckDB type and nullability promise (text exports parsed strictly)."""
    for col in feed.columns:
        s = df[col.name]
        missing = s.isna() | (s.astype(str) == "")
        assert col.nullable or not missing.any(), f"{name}: {col.name} has missing values"
        v = s[~missing]
        if feed.format == "parquet":
            continue  # typed by the schema, checked in test_parquet_schema
        text = v.astype(str)
        if col.type == "TIMESTAMPTZ":
            assert text.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all(), f"{name}: {col.name}"
        elif col.type == "DATE":
            assert text.str.fullmatch(r"\d{4}-\d\d-\d\d").all(), f"{name}: {col.name}"
        elif col.type == "DOUBLE":
            assert pd.to_numeric(text, errors="coerce").notna().all(), f"{name}: {col.name}"
        elif col.type == "BIGINT":
            assert text.str.fullmatch(r"-?\d+").all(), f"{name}: {col.name}"
        elif col.type == "BOOLEAN":
            assert text.isin(["true", "false", "True", "False"]).all(), f"{name}: {col.name}"


def test_parquet_schema_is_the_registry(default_run):
    landing, _, truth = default_run
    feed = FEEDS_BY_NAME["analyzer__samples"]
    e = next(x for x in truth["files"] if x["feed"] == feed.name and x["expected_outcome"] == "accepted")
    schema = pq.read_schema(landing / e["file"])
    assert [(f.name, f.type) for f in schema] == [(c.name, ARROW_TYPES[c.type]) for c in feed.columns]


def test_controller_export_layout(default_run):
    landing, _, truth = default_run
    equipment = set(load_master().equipment.equipment_id)
    e = next(
        x
        for x in truth["files"]
        if x["feed"] == "bioreactor__readings" and x["expected_outcome"] == "accepted" and not x["faults"]
    )
    meta, body, units = read_controller_csv(landing / e["file"])
    assert meta["instrument_id"] in equipment and meta["instrument_id"] in e["file"]
    assert meta["unit_operation"] == "expansion" and meta["batch_id"] in e["file"]
    assert meta["timezone"] == "UTC" and meta["utc_offset"] == "+00:00" and meta["sample_interval_s"] == "60"
    assert int(meta["record_count"]) == len(body)
    assert units == {
        "timestamp": "ISO-8601",
        "temperature": "degC",
        "ph": "pH",
        "dissolved_oxygen": "%sat",
        "co2": "%",
        "rocking_rate": "rpm",
        "gas_flow": "L/min",
        "perfusion_rate": "mL/day",
        "volume": "mL",
        "quality": "code",
    }
    ts = pd.to_datetime(body.timestamp, utc=True, format="ISO8601")
    assert body.timestamp.str.endswith("Z").all()
    assert (ts.diff().dropna() == pd.Timedelta(minutes=1)).all()
    assert set(body.quality) <= {"good", "uncertain", "bad"}


def test_ranges_are_realistic(default_run):
    landing, report, truth = default_run
    batches = pd.concat(
        read_any(p, "mes__batches") for p in sorted((landing / "mes").glob("batches_*.csv")) if "_resent" not in p.name
    )
    assert len(batches) == 50
    rejected = (batches.disposition == "rejected").mean()
    assert 0.01 <= rejected <= 0.08
    cols = pd.concat(read_any(p, "apheresis__collections") for p in (landing / "apheresis").glob("*.csv"))
    merged = batches.merge(cols, on="coi_id")
    turnaround = (pd.to_datetime(merged.disposition_at) - pd.to_datetime(merged.collected_at)).dt.days
    assert turnaround.between(14, 25).all()
    assert cols.cd3_count.astype(float).between(1e9, 4e9).all()
    inf = pd.concat(
        read_any(p, "clinic__infusions")
        for p in (landing / "clinic").glob("*.csv")
        if truth_outcome(truth, landing, p) == "accepted"
    )
    v2v = inf.merge(cols, on="coi_id")
    days = (pd.to_datetime(v2v.infused_at) - pd.to_datetime(v2v.collected_at)).dt.days
    assert days.between(21, 56).all()

    clean_samples = [
        landing / e["file"]
        for e in truth["files"]
        if e["feed"] == "analyzer__samples" and e["expected_outcome"] == "accepted" and not e["faults"]
    ]  # (unit_converted files are accepted too, with metabolites in mg/dL)
    s = pd.concat(read_any(p, "analyzer__samples") for p in clean_samples)
    by = s.groupby("param").value
    assert by.min()["glucose"] > 2.0 and by.max()["glucose"] < 6.0
    assert 0.5e7 < by.max()["vcd"] < 2e7
    assert s[s.param == "viability"].value.between(50, 100).all()
    lac = s[s.param == "lactate"]
    assert lac.groupby("batch_id").value.apply(lambda v: v.iloc[-1] > v.iloc[0]).all()  # lactate rises

    bio = [landing / e["file"] for e in truth["files"] if e["feed"] == "bioreactor__readings" and not e["faults"]]
    for path in bio[:5]:
        _, body, _ = read_controller_csv(path)
        days = len(body) / 1440
        assert 7 <= days <= 14
        assert body.temperature.between(36.0, 38.0).all() and abs(body.temperature.median() - 37) < 0.1
        assert body.ph.between(6.9, 7.5).all()
        assert body.co2.between(4.8, 5.2).all()
        assert body.perfusion_rate.iloc[0] == 0 and body.perfusion_rate.max() <= 1000
        assert body.perfusion_rate.is_monotonic_increasing
    assert 4e6 < report.bioreactor_readings < 8e6


def truth_outcome(truth: dict, landing: Path, path: Path) -> str:
    rel = path.relative_to(landing).as_posix()
    return next(e["expected_outcome"] for e in truth["files"] if e["file"] == rel)


def test_every_fault_kind_is_injected_and_recorded(default_run):
    _, report, truth = default_run
    kinds = {f["kind"] for f in truth["faults"]}
    assert {k.name for k in CATALOG} <= kinds and "oos_value" in kinds
    by_file = {e["file"]: e for e in truth["files"]}
    for f in truth["faults"]:
        assert f["file"] in by_file and f["id"] in by_file[f["file"]]["faults"] or f["kind"] == "oos_value"
    catalog = {c["kind"]: c for c in truth["catalog"]}
    assert all(catalog[f["kind"]]["expected_outcome"] == f["expected_outcome"] for f in truth["faults"])
    assert all(c["what"] and c["how"] for c in truth["catalog"])
    assert sum(report.faults_by_kind.values()) == len(truth["faults"])


@pytest.mark.parametrize("run", ["default_run", "heavy_run"])
def test_faults_are_really_in_the_bytes(request, run):
    landing, _, truth = request.getfixturevalue(run)
    equipment = set(load_master().equipment.equipment_id)
    by_file = {e["file"]: e for e in truth["files"]}
    for f in truth["faults"]:
        path, kind, d = landing / f["file"], f["kind"], f["detail"]
        raw = path.read_bytes()
        if kind == "empty_file":
            assert raw == b""
        elif kind == "duplicate_file":
            assert (
                raw == (landing / d["copy_of"]).read_bytes() and by_file[d["copy_of"]]["expected_outcome"] == "accepted"
            )
            assert sorted([f["file"], d["copy_of"]])[0] == d["copy_of"]  # name order lands the original first
        elif kind == "wrong_encoding":
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")
            assert raw.decode(d["encoding"]).startswith(FEEDS_BY_NAME[f["feed"]].column_names[0])
        elif kind == "truncated_file":
            with pytest.raises(Exception):  # noqa: B017 - any reader error is what "unreadable" means
                read_any(path, f["feed"])
        elif kind == "schema_drift":
            header = raw.decode("utf-8").splitlines()[0].split(",")
            assert header != FEEDS_BY_NAME[f["feed"]].column_names
            if d["variant"] == "renamed":
                assert d["now"] in header and d["column"] not in header
            else:
                assert d["missing"] not in header and d["extra"] in header
        elif kind == "identity_mismatch":
            if d["variant"] == "name":
                meta, _, _ = read_controller_csv(path)
                assert meta["batch_id"] == d["file_batch"] and d["other_batch"] in path.name
            else:
                df = read_any(path, f["feed"])
                assert set(df.batch_id.iloc[[r - 1 for r in d["rows"]]]) == {d["other_batch"]}
                assert f"samples_{d['file_batch']}" in path.name
            batches = pd.concat(read_any(p, "mes__batches") for p in (landing / "mes").glob("batches_*.csv"))
            assert d["other_batch"] != d["file_batch"] and d["other_batch"] in set(batches.batch_id)
        elif kind == "unknown_unit":
            if f["feed"] == "bioreactor__readings":
                assert read_controller_csv(path)[2][d["param"]] == d["unit"]
            else:
                df = read_any(path, f["feed"])
                assert set(df.unit.iloc[[r - 1 for r in d["rows"]]]) == {d["unit"]}
        elif kind == "misfiled":
            assert f["file"] == d["filed_as"] and not (landing / d["belongs_at"]).exists()
            assert read_any(path, f["feed"]).columns.tolist() == FEEDS_BY_NAME[f["feed"]].column_names
        elif kind == "unit_converted":
            df = read_any(path, f["feed"])
            rows = df.iloc[[r - 1 for r in d["rows"]]]
            assert set(rows.unit) == {"mg/dL"} and set(rows.param) == {"glucose", "lactate"}
            assert rows.value.tolist() == pytest.approx([v * 100 for v in d["registry_values"]])
        elif kind == "past_calibration":
            df = read_any(path, f["feed"])
            assert set(df.instrument_id.iloc[[r - 1 for r in d["rows"]]]) == {d["instrument_id"]}
            assert d["instrument_id"] in equipment and d["instrument_id"] not in set(
                df.instrument_id.drop(df.index[[r - 1 for r in d["rows"]]])
            )
        elif kind == "unknown_instrument":
            meta, _, _ = read_controller_csv(path)
            assert meta["instrument_id"] == d["instrument_id"] and d["instrument_id"] not in equipment
        elif kind == "local_timestamps":
            meta, body, _ = read_controller_csv(path)
            assert meta["timezone"] == "Europe/Berlin" and meta["utc_offset"] in ("+01:00", "+02:00")
            assert body.timestamp.iloc[0].endswith(meta["utc_offset"])
            first = pd.to_datetime(body.timestamp.iloc[0], format="ISO8601").tz_convert("UTC")
            assert first == pd.Timestamp(d["first_ts_utc"])
        elif kind == "missing_value" and "blank_windows" in d:
            _, body, _ = read_controller_csv(path)
            for w in d["blank_windows"]:
                rows = body.iloc[w["first_row"] - 1 : w["first_row"] - 1 + w["rows"]]
                assert rows[w["param"]].isna().all() and (rows.quality == "bad").all()
        elif kind in ("missing_value", "missing_required_value", "impossible_value"):
            df = read_any(path, f["feed"])
            values = df[d["column"]].iloc[[r - 1 for r in d["rows"]]]
            if kind == "impossible_value":
                assert all(v > 100 or v < 0 for v in values)
            else:
                assert values.isna().all() or (values == "").all()
            assert by_file[f["file"]]["rows_rejected"] == (len(d["rows"]) if kind != "missing_value" else 0)


def test_oos_results_are_exactly_the_nonconforming_ones(default_run):
    """Recompute conformance from the seed specs (effective on the sample's UTC date) independently."""
    landing, _, truth = default_run
    specs = pd.read_csv(Path(__file__).resolve().parents[2] / "dbt" / "seeds" / "qc_specifications.csv")
    qc = pd.concat(
        read_any(landing / e["file"], e["feed"])
        for e in truth["files"]
        if e["feed"] == "lims__qc_results" and e["expected_outcome"] in ("accepted", "rows-rejected")
    )
    batches = pd.concat(
        read_any(p, "mes__batches") for p in (landing / "mes").glob("batches_2*.csv") if "_resent" not in p.name
    )
    qc = qc.merge(batches[["batch_id", "product_code", "disposition"]], on="batch_id")
    qc["day"] = pd.to_datetime(qc.sampled_at).dt.tz_convert(None).dt.normalize()
    m = qc.merge(specs, on=["product_code", "attribute", "test_code"])
    eff_from, eff_to = pd.to_datetime(m.effective_from), pd.to_datetime(m.effective_to)
    m = m[(eff_from <= m.day) & (eff_to.isna() | (m.day < eff_to))]
    assert len(m) == len(qc)  # exactly one spec version per result
    v = pd.to_numeric(m.result_text.str.lstrip("<"), errors="coerce")
    ok = pd.Series(True, index=m.index)
    ok[m.operator == ">="] = v >= m.lsl
    ok[m.operator == ">"] = v > m.lsl
    ok[m.operator == "<="] = v <= m.usl
    ok[m.operator == "<"] = v < m.usl
    ok[m.operator == "between"] = (v >= m.lsl) & (v <= m.usl)
    ok[m.operator == "=="] = m.result_text == m.pass_text
    oos = set(zip(m.sample_id[~ok], m.test_code[~ok], strict=True))
    expected = {
        (f["detail"]["sample_id"], f["detail"]["test_code"]) for f in truth["faults"] if f["kind"] == "oos_value"
    }
    assert oos == expected and len(expected) >= 1
    assert set(m.disposition[~ok]) <= {"rejected", "exception_release"}
    assert (m.result_value.eq("") == (m.result_text.str.startswith("<") | (m.result_type == "pass_fail"))).all()


@pytest.mark.parametrize(("scale", "rate"), [(2, 0.01), (3, 0.05), (5, 0.3), (8, 0.05)])
def test_every_structural_kind_even_in_small_data_sets(tmp_path, scale, rate):
    _, truth = _run(tmp_path, scale, rate)
    structural = {k.name for k in CATALOG if k.structural}
    assert structural <= {f["kind"] for f in truth["faults"]}
    assert sum(e["expected_outcome"] == "quarantined:empty" for e in truth["files"]) == 1


def test_fault_rate_zero_is_clean(clean_run):
    landing, report, truth = clean_run
    assert truth["faults"] == [] and report.faults_by_kind == {}
    assert {e["expected_outcome"] for e in truth["files"]} == {"accepted"}
    assert report.batches_by_disposition == {"released": 12}
    for e in truth["files"]:
        if not e["file"].endswith(".parquet"):
            (landing / e["file"]).read_bytes().decode("utf-8")  # every text file is valid UTF-8


def test_scale_changes_counts(tmp_path):
    small, _ = _run(tmp_path / "s", 3, 0.0)
    large, _ = _run(tmp_path / "l", 9, 0.0)
    assert small.rows_by_feed["mes__batches"] == 3 and large.rows_by_feed["mes__batches"] == 9
    assert small.rows_by_feed["mes__process_steps"] == 27 and large.rows_by_feed["mes__process_steps"] == 81
    assert sum(p.parent.name == "bioreactor" for p in large.files) == 9
    assert large.bioreactor_readings > 2.5 * small.bioreactor_readings


def test_regenerating_removes_only_files_it_wrote(tmp_path):
    settings = Settings(home=tmp_path / "home")
    landing = tmp_path / "landing"
    first = generate(settings, landing, 6, SEED, 0.0)
    foreign = landing / "lims" / "qc_results_manual_upload.csv"
    foreign.write_text("kept\n")
    second = generate(settings, landing, 2, SEED, 0.0)
    on_disk = {p for p in landing.rglob("*") if p.is_file()}
    assert on_disk == set(second.files) | {foreign}
    assert len(first.files) > len(second.files)


def test_never_overwrites_a_file_it_did_not_write(tmp_path):
    settings = Settings(home=tmp_path / "home")
    landing = tmp_path / "landing"
    first = generate(settings, landing, 2, SEED, 0.0)
    real = next(p for p in first.files if p.parent.name == "lims")
    real.write_text("a real export edited by hand\n")
    before = {p: p.read_bytes() for p in landing.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match="refusing to overwrite .*qc_results"):
        generate(settings, landing, 2, SEED, 0.0)
    assert {p: p.read_bytes() for p in landing.rglob("*") if p.is_file()} == before


def test_an_interrupted_run_can_be_repeated(tmp_path, monkeypatch):
    settings = Settings(home=tmp_path / "home")
    landing = tmp_path / "landing"
    generate(settings, landing, 2, SEED, 0.05)
    real_write, calls = Path.write_bytes, []

    def crash_on_fifth(self, data):
        calls.append(self)
        if len(calls) == 5:
            raise OSError("disk full")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", crash_on_fifth)
    with pytest.raises(OSError, match="disk full"):
        generate(settings, landing, 3, SEED + 1, 0.05)
    monkeypatch.setattr(Path, "write_bytes", real_write)
    report = generate(settings, landing, 3, SEED + 1, 0.05)  # half-written files are still the generator's own
    assert {p for p in landing.rglob("*") if p.is_file()} == set(report.files)


@pytest.mark.parametrize(("scale", "rate"), [(0, 0.05), (5, -0.1), (5, 1.5)])
def test_bad_arguments_fail_with_a_clear_message(tmp_path, scale, rate):
    with pytest.raises(ValueError, match="scale|fault_rate"):
        generate(Settings(home=tmp_path / "home"), tmp_path / "landing", scale, SEED, rate)


def test_measurement_entry_point_prints_figures(capsys):
    from pipelines.generate.__main__ import main

    assert main(["--scale", "2", "--fault-rate", "0"]) == 0
    out = capsys.readouterr().out
    assert "files=" in out and "bioreactor_readings=" in out and "cpu=" in out
    assert main(["--scale", "0"]) == 2
    assert "scale must be at least 1" in capsys.readouterr().err
