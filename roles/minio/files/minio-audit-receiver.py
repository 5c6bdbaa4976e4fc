#!/usr/bin/python3
# Managed by the cgt_lakehouse `minio` role.
"""Receive MinIO audit events on loopback and write each one as a single JSON line to stdout (the journal).

The community MinIO server can only send audit events to a webhook or Kafka. This receiver is that webhook, so the
audit trail lands in the host's persistent journal (SyslogIdentifier=minio-audit) next to every other service log.
The server keeps undelivered events in its queue directory and retries, so a restart of this service loses nothing.

Environment: MINIO_AUDIT_LISTEN (host:port, loopback), MINIO_AUDIT_TOKEN (expected Authorization header value).
Standard library only.
"""

import hmac
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 16 * 1024 * 1024  # one batch of events; larger requests are refused, not truncated


def events_from(body: bytes) -> list:
    """Decode one POST body: a JSON object, a JSON array of objects, or newline-delimited objects (batches)."""
    text = body.decode("utf-8").strip()
    if not text:
        return []
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return doc if isinstance(doc, list) else [doc]


class AuditHandler(BaseHTTPRequestHandler):
    token = ""

    def do_POST(self):  # noqa: N802 (http.server API)
        supplied = self.headers.get("Authorization", "")
        if not hmac.compare_digest(supplied.encode(), self.token.encode()):
            self.send_error(401, "bad token")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413, "batch too large")
            return
        try:
            events = events_from(self.rfile.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            # Refuse so the server keeps the event in its queue instead of losing it.
            print(f"minio-audit: undecodable event refused: {exc}", file=sys.stderr, flush=True)
            self.send_error(400, "invalid JSON")
            return
        for event in events:
            sys.stdout.write(json.dumps(event, separators=(",", ":"), sort_keys=True) + "\n")
        sys.stdout.flush()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):  # noqa: A002 - the access log would only duplicate the events
        return


def main() -> int:
    host, _, port = os.environ.get("MINIO_AUDIT_LISTEN", "127.0.0.1:9099").rpartition(":")
    token = os.environ.get("MINIO_AUDIT_TOKEN", "")
    if not token:
        print("minio-audit: MINIO_AUDIT_TOKEN is not set; refusing to start", file=sys.stderr)
        return 2
    AuditHandler.token = token
    server = ThreadingHTTPServer((host, int(port)), AuditHandler)
    print(f"minio-audit: listening on {host}:{port}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
