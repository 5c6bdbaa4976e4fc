"""ansible-playbook over a local connection with this repository's roles and the JSON callback (the operations
tests run real playbooks: the change record's check runs, the dagster role's schema entry point)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


HEADER = """\
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
"""


def run_tasks(playbook: Path, tasks: str, *args: str) -> subprocess.CompletedProcess:
    """Write `tasks` (YAML, indented for a play's task list) as a localhost play to `playbook` and run it."""
    playbook.write_text(HEADER + tasks)
    return run_playbook(playbook, *args)


def run_playbook(playbook: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
    }
    ansible = Path(sys.executable).parent / "ansible-playbook"
    cmd = [str(ansible), "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}", *args, str(playbook)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def results(stdout: str) -> dict:
    """The JSON callback's document (the timer callback's lines follow it)."""
    return json.JSONDecoder().raw_decode(stdout)[0]
