#!/usr/bin/env python3
"""Stand-in OpenLineage endpoint for the dagster scenario: POST /api/v1/lineage with the bearer token appends the
event as one JSON line; anything else is refused. GET /health answers 200. Usage: receiver.py ADDR PORT LOGFILE
(token in LINEAGE_TOKEN)."""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = os.environ["LINEAGE_TOKEN"]
LOG = sys.argv[3]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def do_POST(self):  # noqa: N802
        if self.path != "/api/v1/lineage":
            return self._answer(404)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._answer(401)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            event = json.loads(body)
        except ValueError:
            return self._answer(400)
        with open(LOG, "a") as f:
            f.write(json.dumps(event) + "\n")
        self._answer(201)

    def _answer(self, code):
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
