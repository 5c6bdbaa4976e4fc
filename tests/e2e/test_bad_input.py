"""`lakehouse ingest DIR` on files it has never seen — unreadable, empty, wrongly encoded, schema-drifted,
unclaimed — never crashes: each file ends quarantined with a reason, `status --json` says so, bytes are kept."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.sources import FEEDS_BY_NAME

pytestmark = pytest.mark.slow


def _header(feed: str) -> str:
    return ",".join(FEEDS_BY_NAME[feed].column_names)


def _bad_files(root: Path) -> dict[str, bytes]:
    good_row = "DEV-1,B26-00001,2026-01-05T10:00:00Z,,process,minor,late sample,,,"
    files = {
        "qms/deviations_2026-01.csv": b"",  # empty
        "qms/deviations_2026-02.csv": (_header("qms__deviations") + "\n" + good_row + " \u00b0C\n").encode("utf-16"),
        "qms/deviations_2026-03.csv": (b"deviation_id,opened,severity_level\nDEV-9,2026-03-01,minor\n"),
        "analyzer/samples_B26-99999.parquet": os.urandom(2048),  # not Parquet at all
        "logistics/shipments_2026-05.json": b'[{"shipment_id": "S1", "coi_id": ',  # truncated JSON
        "mes/batches_2026-01.csv": bytes(range(256)) * 8,  # binary garbage with a CSV name
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def test_ingest_quarantines_bad_files_with_reasons_and_keeps_their_bytes(tmp_path):
    files = _bad_files(tmp_path / "incoming")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env["LAKEHOUSE_HOME"] = str(tmp_path / "home")
    env["LAKEHOUSE_LANDING_SETTLE_SECONDS"] = "0"  # the files were written and closed just above
    cli = [sys.executable, "-m", "pipelines.cli"]
    result = subprocess.run([*cli, "ingest", str(tmp_path / "incoming")], capture_output=True, text=True, env=env)
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr  # quarantine is a result, not a crash
    status = subprocess.run([*cli, "status", "--json"], capture_output=True, text=True, env=env)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    by_hash = {f["sha256"]: f for f in report["files"]}
    for rel, data in files.items():
        digest = hashlib.sha256(data).hexdigest()
        assert digest in by_hash, f"{rel} not in status"
        entry = by_hash[digest]
        assert entry["outcome"] == "quarantined", (rel, entry)
        assert entry["reason"], rel
        assert (tmp_path / "incoming" / rel).read_bytes() == data  # the landed file is untouched
    assert report["counts"]["quarantined"] == len(files)
