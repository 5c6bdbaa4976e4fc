"""Bad input to `lakehouse` ends in one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

LAKEHOUSE = [sys.executable, "-m", "pipelines.cli"]


def lakehouse(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    clean |= {"LAKEHOUSE_HOME": str(tmp_path / "home"), "COLUMNS": "80", **env}
    return subprocess.run([*LAKEHOUSE, *args], capture_output=True, text=True, env=clean, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: ")
    for fragment in fragments:
        assert fragment in first, first


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        ({"LAKEHOUSE_RAW_BACKEND": "gcs"}, ("LAKEHOUSE_RAW_BACKEND", "'local' or 's3'")),
        ({"LAKEHOUSE_SCALE": "many"}, ("LAKEHOUSE_SCALE", "integer")),
        (
            {"LAKEHOUSE_LAKE_BACKEND": "s3"},
            ("LAKEHOUSE_S3_ENDPOINT_URL", "LAKEHOUSE_S3_ACCESS_KEY_ID", "LAKEHOUSE_S3_SECRET_ACCESS_KEY"),
        ),
        ({"LAKEHOUSE_MARTS_BACKEND": "postgres"}, ("LAKEHOUSE_MARTS_PG_DSN",)),
    ],
)
def test_invalid_settings_are_one_line(tmp_path, env, fragments):
    assert_one_line_error(lakehouse("status", tmp_path=tmp_path, **env), 2, "invalid settings", *fragments)


def test_bad_usage_is_one_line(tmp_path):
    assert_one_line_error(lakehouse("run", "--stage", "deploy", tmp_path=tmp_path), 2, "'deploy' is not one of")
    assert_one_line_error(lakehouse("ingest", str(tmp_path / "missing"), tmp_path=tmp_path), 2, "does not exist")
    assert_one_line_error(lakehouse("nonsense", tmp_path=tmp_path), 2, "No such command")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(lakehouse("ingest", str(tmp_path / "empty"), tmp_path=tmp_path), 2, "no files found")


def test_an_unreachable_control_database_is_one_line(tmp_path):
    result = lakehouse(
        "status", tmp_path=tmp_path, LAKEHOUSE_CONTROL_DB_URL="postgresql+psycopg://nobody@127.0.0.1:1/control"
    )
    assert_one_line_error(result, 1)


def test_help_lists_every_command(tmp_path):
    result = lakehouse("--help", tmp_path=tmp_path)
    assert result.returncode == 0
    for command in ("generate", "ingest", "run", "demo", "status", "dev"):
        assert f"  {command} " in result.stdout
