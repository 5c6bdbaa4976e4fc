"""Real S3 requests against a converged MinIO host, run from the controller with boto3 over the lab subnet.

Usage: python s3_checks.py ENDPOINT CA_FILE   (credentials from MINIO_CHECK_* environment variables)
Prints one line per check and exits 1 if any check fails. Every check asserts behaviour a user relies on.
"""

import os
import ssl
import sys
import urllib.request
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, SSLError

ENDPOINT, CA_FILE = sys.argv[1], sys.argv[2]
RESULTS = []


def client(user_env, secret_env, verify=CA_FILE):
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        aws_access_key_id=os.environ[user_env],
        aws_secret_access_key=os.environ[secret_env],
        region_name="us-east-1",
        verify=verify,
        config=Config(signature_version="s3v4", retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def check(name, fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - report every failure, keep checking
        RESULTS.append(False)
        print(f"FAIL {name}: {type(exc).__name__}: {exc}")
    else:
        RESULTS.append(True)
        print(f"ok   {name}")


def refused(fn, codes=("AccessDenied",)):
    """The call must be refused by the server with one of `codes`."""
    try:
        fn()
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        assert code in codes, f"refused with {code}, expected one of {codes}"
        return code
    raise AssertionError("the server accepted a request it must refuse")


root = client("MINIO_CHECK_ROOT_USER", "MINIO_CHECK_ROOT_PASSWORD")
pipelines = client("MINIO_CHECK_PIPELINES_USER", "MINIO_CHECK_PIPELINES_SECRET")
backup = client("MINIO_CHECK_BACKUP_USER", "MINIO_CHECK_BACKUP_SECRET")
auditor = client("MINIO_CHECK_AUDITOR_USER", "MINIO_CHECK_AUDITOR_SECRET")
run = uuid.uuid4().hex[:12]
raw_key = f"verify/{run}/batch-001.csv"
state = {}


def tls_with_lab_ca():
    ctx = ssl.create_default_context(cafile=CA_FILE)
    with urllib.request.urlopen(f"{ENDPOINT}/minio/health/live", context=ctx, timeout=10) as resp:
        assert resp.status == 200, resp.status


def tls_without_lab_ca_rejected():
    # Proves the check above is a real verification: without the lab CA the certificate is not trusted.
    ctx = ssl.create_default_context(cafile=None)
    ctx.load_verify_locations(cafile=ssl.get_default_verify_paths().openssl_cafile)
    try:
        urllib.request.urlopen(f"{ENDPOINT}/minio/health/live", context=ctx, timeout=10)
    except (ssl.SSLCertVerificationError, SSLError) as exc:
        return exc
    except urllib.error.URLError as exc:
        assert isinstance(exc.reason, ssl.SSLCertVerificationError), exc
        return exc
    raise AssertionError("certificate accepted without the lab CA")


def plain_http_refused():
    try:
        urllib.request.urlopen(ENDPOINT.replace("https://", "http://") + "/minio/health/live", timeout=10)
    except (urllib.error.URLError, ConnectionError, OSError) as exc:
        return exc
    raise AssertionError("plain HTTP answered 2xx")


def buckets_configured():
    assert root.get_bucket_versioning(Bucket="raw")["Status"] == "Enabled"
    lock = root.get_object_lock_configuration(Bucket="raw")["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled", lock
    rule = lock["Rule"]["DefaultRetention"]
    assert rule["Mode"] == os.environ["MINIO_CHECK_RETENTION_MODE"], rule
    assert rule["Days"] == int(os.environ["MINIO_CHECK_RETENTION_DAYS"]), rule
    names = {b["Name"] for b in root.list_buckets()["Buckets"]}
    assert {"raw", "lake", "quarantine", "backups"} <= names, names


def pipelines_write_and_read_raw():
    v1 = pipelines.put_object(Bucket="raw", Key=raw_key, Body=b"batch,value\nB001,1.0\n")
    state["v1"] = v1["VersionId"]
    body = pipelines.get_object(Bucket="raw", Key=raw_key)["Body"].read()
    assert body == b"batch,value\nB001,1.0\n", body


def overwrite_creates_version():
    v2 = pipelines.put_object(Bucket="raw", Key=raw_key, Body=b"batch,value\nB001,2.0\n")
    state["v2"] = v2["VersionId"]
    assert state["v2"] != state["v1"]
    versions = pipelines.list_object_versions(Bucket="raw", Prefix=raw_key)["Versions"]
    assert {v["VersionId"] for v in versions} == {state["v1"], state["v2"]}, versions
    old = pipelines.get_object(Bucket="raw", Key=raw_key, VersionId=state["v1"])["Body"].read()
    assert old == b"batch,value\nB001,1.0\n", old
    latest = pipelines.get_object(Bucket="raw", Key=raw_key)["Body"].read()
    assert latest == b"batch,value\nB001,2.0\n", latest


def version_carries_default_retention():
    head = root.head_object(Bucket="raw", Key=raw_key, VersionId=state["v1"])
    assert head.get("ObjectLockMode") == os.environ["MINIO_CHECK_RETENTION_MODE"], head
    assert head.get("ObjectLockRetainUntilDate"), head


def root_cannot_delete_locked_version():
    # Root has every permission: only the object lock can refuse this.
    # MinIO answers InvalidRequest ("Object is WORM protected ...") here; require the lock to be the reason.
    try:
        root.delete_object(Bucket="raw", Key=raw_key, VersionId=state["v1"])
    except ClientError as exc:
        message = exc.response["Error"].get("Message", "")
        assert any(w in message.lower() for w in ("worm", "lock", "retention")), message
    else:
        raise AssertionError("root deleted a version under retention")
    assert root.get_object(Bucket="raw", Key=raw_key, VersionId=state["v1"])["Body"].read()


def pipelines_cannot_delete_or_bypass_in_raw():
    refused(lambda: pipelines.delete_object(Bucket="raw", Key=raw_key, VersionId=state["v1"]))
    refused(
        lambda: pipelines.delete_object(
            Bucket="raw", Key=raw_key, VersionId=state["v1"], BypassGovernanceRetention=True
        )
    )
    refused(lambda: pipelines.delete_object(Bucket="raw", Key=raw_key))  # not even a delete marker


def pipelines_read_write_lake_and_quarantine():
    for bucket in ("lake", "quarantine"):
        key = f"verify/{run}/{bucket}.parquet"
        pipelines.put_object(Bucket=bucket, Key=key, Body=b"PAR1")
        assert pipelines.get_object(Bucket=bucket, Key=key)["Body"].read() == b"PAR1"
    pipelines.delete_object(Bucket="lake", Key=f"verify/{run}/lake.parquet")  # compaction needs this
    refused(lambda: pipelines.delete_object(Bucket="quarantine", Key=f"verify/{run}/quarantine.parquet"))


def pipelines_kept_out_of_backups():
    refused(lambda: pipelines.put_object(Bucket="backups", Key=f"verify/{run}/x", Body=b"x"))
    refused(lambda: pipelines.list_objects_v2(Bucket="backups"))


def auditor_reads_but_cannot_write():
    assert auditor.get_object(Bucket="raw", Key=raw_key, VersionId=state["v1"])["Body"].read()
    assert auditor.list_object_versions(Bucket="raw", Prefix=raw_key)["Versions"]
    for bucket in ("raw", "lake", "quarantine", "backups"):
        refused(lambda b=bucket: auditor.put_object(Bucket=b, Key=f"verify/{run}/auditor", Body=b"x"))
    refused(lambda: auditor.delete_object(Bucket="raw", Key=raw_key))


def backup_reads_all_writes_only_backups():
    assert backup.get_object(Bucket="raw", Key=raw_key)["Body"].read()
    assert backup.get_object(Bucket="quarantine", Key=f"verify/{run}/quarantine.parquet")["Body"].read()
    backup.put_object(Bucket="backups", Key=f"verify/{run}/dump.sql.gz", Body=b"dump")
    refused(lambda: backup.put_object(Bucket="raw", Key=f"verify/{run}/backup", Body=b"x"))
    refused(lambda: backup.delete_object(Bucket="backups", Key=f"verify/{run}/dump.sql.gz"))


def wrong_secret_refused():
    os.environ["MINIO_CHECK_WRONG_SECRET"] = "not-the-secret"
    bad = client("MINIO_CHECK_PIPELINES_USER", "MINIO_CHECK_WRONG_SECRET")
    refused(lambda: bad.list_objects_v2(Bucket="raw"), codes=("SignatureDoesNotMatch", "InvalidAccessKeyId"))


for fn in (
    tls_with_lab_ca,
    tls_without_lab_ca_rejected,
    plain_http_refused,
    buckets_configured,
    pipelines_write_and_read_raw,
    overwrite_creates_version,
    version_carries_default_retention,
    root_cannot_delete_locked_version,
    pipelines_cannot_delete_or_bypass_in_raw,
    pipelines_read_write_lake_and_quarantine,
    pipelines_kept_out_of_backups,
    auditor_reads_but_cannot_write,
    backup_reads_all_writes_only_backups,
    wrong_secret_refused,
):
    check(fn.__name__.replace("_", " "), fn)

print(f"AUDIT_MARKER {raw_key}")
print(f"{sum(RESULTS)}/{len(RESULTS)} checks passed against {ENDPOINT}")
sys.exit(0 if all(RESULTS) else 1)
