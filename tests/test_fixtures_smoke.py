"""The shared server fixtures start real servers that answer."""

import psycopg


def test_postgres_server_answers(postgres_server):
    dsn = postgres_server.create_database("smoke")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select current_database()").fetchone()[0] == "smoke"


def test_s3_server_roundtrip(s3_server):
    s3_server.create_bucket("smoke")
    s3_server.client().put_object(Bucket="smoke", Key="k", Body=b"bytes")
    assert s3_server.client().get_object(Bucket="smoke", Key="k")["Body"].read() == b"bytes"
