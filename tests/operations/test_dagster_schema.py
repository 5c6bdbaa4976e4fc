"""roles/dagster `tasks_from: schema` (ADR 0190): the instance's schema state read from `dagster instance info` of a
release decides whether the role migrates before it switches. Real ansible-playbook over a local connection; the
release's `dagster` is a stub printing what Dagster 1.13 printed for a current and for a behind PostgreSQL instance
(fixtures/, captured from a real instance whose alembic_version was set one revision back)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.operations.local_ansible import results, run_tasks

FIXTURES = Path(__file__).parent / "fixtures"


def read_schema(tmp_path: Path, info_output: str, *args: str) -> dict:
    release = tmp_path / "release"
    (release / "bin").mkdir(parents=True)
    (tmp_path / "info.txt").write_text(info_output)
    stub = release / "bin" / "dagster"
    stub.write_text(f"#!/bin/sh\n[ \"$1 $2\" = 'instance info' ] || exit 3\ncat {tmp_path / 'info.txt'}\n")
    stub.chmod(0o755)
    tasks = f"""\
    - name: Read the schema
      ansible.builtin.include_role:
        name: dagster
        tasks_from: schema
      vars:
        dagster_schema_release: {release}
    - name: Show
      ansible.builtin.debug:
        msg:
          schema: "{{{{ dagster_schema | default('unset') }}}}"
          behind: "{{{{ dagster_schema_behind | default('unset') }}}}"
"""
    res = run_tasks(tmp_path / "play.yml", tasks, "-e", json.dumps({"__dagster_instance_run": []}), *args)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    tasks = results(res.stdout)["plays"][0]["tasks"]
    return next(t for t in tasks if t["task"]["name"] == "Show")["hosts"]["localhost"]["msg"]


def test_a_current_instance_is_not_behind(tmp_path):
    got = read_schema(tmp_path, (FIXTURES / "dagster-instance-info-current.txt").read_text())
    assert got["behind"] is False
    assert set(got["schema"]) == {"event_log_storage", "run_storage", "schedule_storage"}
    assert got["schema"]["run_storage"] == {"current": "29b539ebc72a", "latest": "29b539ebc72a"}


def test_an_instance_one_revision_back_is_behind(tmp_path):
    got = read_schema(tmp_path, (FIXTURES / "dagster-instance-info-behind.txt").read_text())
    assert got["behind"] is True
    assert got["schema"]["schedule_storage"] == {"current": "f495c27d5019", "latest": "29b539ebc72a"}


@pytest.mark.parametrize("output", ["", "$DAGSTER_HOME: /var/lib/dagster/home\n\nsomething else entirely\n"])
def test_an_unreadable_state_counts_as_behind_so_migrate_decides(tmp_path, output):
    got = read_schema(tmp_path, output)
    assert got["behind"] is True
    assert got["schema"] == {}


def test_check_mode_runs_nothing(tmp_path):
    got = read_schema(tmp_path, "not read", "--check")
    assert got == {"schema": "unset", "behind": "unset"}
