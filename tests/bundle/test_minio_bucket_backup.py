"""The bucket backup tool (roles/minio/files/minio-bucket-backup.py) against the bundle's real object server: real
signatures, the role's own `lakehouse-backup` policy for the export (read-only), root for the import; every
version, delete marker, retention date and legal hold comes back (tests/test_minio_bucket_backup.py: round_trip)."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import boto3
import pytest
import yaml

from tests.bundle.conftest import artifact, wait_http
from tests.fixtures.net import free_port
from tests.test_minio_bucket_backup import round_trip, run

pytestmark = pytest.mark.bundle
ROLE = Path(__file__).resolve().parents[2] / "roles" / "minio"


def backup_policy() -> str:
    """The role's lakehouse-backup policy, with the role's default backups bucket name."""
    policies = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__minio_policies"]
    return json.dumps(policies["lakehouse-backup"]).replace("{{ minio_backups_bucket }}", "backups")


def test_round_trip_on_the_real_server_with_the_roles_policy(bundle_dir, manifest, tmp_path, capsys, monkeypatch):
    port, console = free_port(), free_port()
    root, root_secret = "t" + secrets.token_hex(8), secrets.token_urlsafe(24)
    backup_secret = secrets.token_urlsafe(24)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MINIO_ROOT_USER": root, "MINIO_ROOT_PASSWORD": root_secret}
    cmd = [str(bundle_dir / artifact(manifest, "minio")["file"]), "server", "--quiet", "--address", f"127.0.0.1:{port}"]
    cmd += ["--console-address", f"127.0.0.1:{console}", str(tmp_path / "data")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_http(f"{url}/minio/health/live", proc, 60) == 200
        mc = [str(bundle_dir / artifact(manifest, "mc")["file"]), "--config-dir", str(tmp_path / "mc")]
        mc_env = {**env, "MC_HOST_t": f"http://{root}:{root_secret}@127.0.0.1:{port}"}
        (tmp_path / "policy.json").write_text(backup_policy())
        for args in (
            ["admin", "policy", "create", "t", "lakehouse-backup", str(tmp_path / "policy.json")],
            ["admin", "user", "add", "t", "backup", backup_secret],
            ["admin", "policy", "attach", "t", "lakehouse-backup", "--user", "backup"],
        ):
            subprocess.run(mc + args, env=mc_env, check=True, capture_output=True)
        accounts = {"export": ("backup", backup_secret), "import": (root, root_secret)}

        def credentials(role: str) -> None:
            monkeypatch.setenv("S3_ACCESS_KEY", accounts[role][0])
            monkeypatch.setenv("S3_SECRET_KEY", accounts[role][1])

        client = boto3.client(
            "s3", endpoint_url=url, aws_access_key_id=root, aws_secret_access_key=root_secret, region_name="us-east-1"
        )
        round_trip(client, url, tmp_path, capsys, credentials)

        # Buckets configured the way the role does it (mc): the server then answers without the XML namespace.
        for args in (
            ["mb", "--with-lock", "t/mc-raw"],
            ["retention", "set", "--default", "GOVERNANCE", "1d", "t/mc-raw"],
            ["mb", "t/mc-q"],
            ["version", "enable", "t/mc-q"],
        ):
            subprocess.run(mc + args, env=mc_env, check=True, capture_output=True)
        credentials("export")
        capsys.readouterr()
        assert run("export", "--url", url, "--out", str(tmp_path / "mc")) == 0
        counts = json.loads(capsys.readouterr().out)
        assert counts["mc-raw"]["object_lock"] == {"enabled": True, "mode": "GOVERNANCE", "days": 1}
        assert (counts["mc-raw"]["versioning"], counts["mc-q"]["versioning"]) == ("Enabled", "Enabled")

        # The read-only account cannot import (it may not write), and a wrong secret is refused: one line each.
        credentials("export")
        (tmp_path / "export" / "imported.jsonl").unlink()
        assert run("import", "--url", url, "--in", str(tmp_path / "export")) == 1
        assert "AccessDenied" in capsys.readouterr().err
        monkeypatch.setenv("S3_SECRET_KEY", "wrong-" + backup_secret)
        assert run("export", "--url", url, "--out", str(tmp_path / "x")) == 1
        err = capsys.readouterr().err
        assert "SignatureDoesNotMatch" in err and err.count("\n") == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)
