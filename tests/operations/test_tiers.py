"""playbooks/vars/tiers.yml is the one list of each tier's units and health checks: rendered per host by ansible
(as the health gates, the IQ, lab/e2e-checks.yml and lab/upgrade's probes see it), the database unit follows
roles/postgresql's version and the inventory's cluster and port, and the IQ takes its units from it."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.operations.test_lab_upgrade_downtime import load

REPO = Path(__file__).resolve().parents[2]


def test_the_lab_hosts_get_the_units_the_roles_install():
    tiers = load().rendered_tiers()
    assert {"cgt-bi-1", "cgt-database-1", "cgt-lineage-1", "cgt-orchestrator-1", "cgt-storage-1"} <= set(tiers)
    version = yaml.safe_load((REPO / "roles/postgresql/vars/Debian.yml").read_text())["__postgresql_version"]
    for host in tiers.values():
        assert host["database"]["units"] == [f"postgresql@{version}-main.service"]
        assert host["database"]["health_command"] == "pg_isready -q -h 127.0.0.1 -p 5432"
        assert host["storage"]["units"] == ["minio.service", "minio-audit.service"]
        assert host["orchestrator"]["health"] == "http://127.0.0.1:3000/server_info"


def test_the_database_unit_follows_the_inventorys_cluster_and_port():
    tiers = load().rendered_tiers(extra=("-e", "postgresql_cluster_name=reports", "-e", "postgresql_port=5433"))
    db = tiers["cgt-database-1"]["database"]
    assert db["units"] == ["postgresql@15-reports.service"]
    assert db["health_command"].endswith("-p 5433")


def test_the_iq_checks_the_units_of_tiers_yml():
    play = yaml.safe_load((REPO / "playbooks/qualify/iq.yml").read_text())[0]
    assert play["vars_files"] == ["../vars/tiers.yml"]
    for tier, spec in play["vars"]["__q_tiers"].items():
        assert spec["units"] == f"{{{{ lakehouse_tiers.{tier}.units }}}}", tier
