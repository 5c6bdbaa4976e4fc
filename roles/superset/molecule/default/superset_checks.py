"""Real requests against the Superset of the role test (run on the controller through an SSH tunnel to loopback).

    SUPERSET_URL=http://127.0.0.1:PORT SUPERSET_USERS='[{"uid": .., "role": ..}, ...]' \
    SUPERSET_SECRETS_FILE=<ephemeral>/secrets.yml python superset_checks.py     # ldap_password_<uid> in it

Checks, each printed as one line "ok: ..." or "FAIL: ...": API sign-in (LDAP) of every directory user; a wrong
password is refused; the Viewer can read dashboards and chart data but can neither edit a dashboard nor use SQL
Lab; the Analyst can run SQL in SQL Lab; a user in no mapped group sees no dashboard; every chart's data request
answers rows and no error; the login page carries the CSP (no telemetry host) and a Secure, HttpOnly session
cookie. Exit 1 if any check failed. Prints the moment of the wrong-password attempt (UTC) as `wrong_password_at=`.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import yaml

BASE = os.environ["SUPERSET_URL"].rstrip("/")
SECRETS = yaml.safe_load(Path(os.environ["SUPERSET_SECRETS_FILE"]).read_text())
USERS = {
    u["role"]: {**u, "password": SECRETS[f"ldap_password_{u['uid']}"]} for u in json.loads(os.environ["SUPERSET_USERS"])
}
failures: list[str] = []


def check(ok: bool, what: str, detail: object = "") -> bool:
    print(f"{'ok' if ok else 'FAIL'}: {what}" + ("" if ok else f" ({str(detail)[:300]})"), flush=True)
    if not ok:
        failures.append(what)
    return ok


class Session:
    """One signed-in API client: bearer token, plus the session cookie and CSRF token writes need."""

    def __init__(self, user: dict):
        self.user = user
        status, body, _ = request("POST", "/api/v1/security/login", {
            "username": user["uid"], "password": user["password"], "provider": "ldap", "refresh": False,
        })  # fmt: skip
        self.token = body.get("access_token") if status == 200 else None
        self.status = status
        self.cookie = ""
        self.csrf = ""

    def call(self, method: str, path: str, payload: dict | None = None):
        headers = {"Authorization": f"Bearer {self.token}"}
        if method != "GET":
            if not self.csrf:
                _, body, set_cookie = request("GET", "/api/v1/security/csrf_token/", headers=headers)
                self.csrf = body.get("result", "")
                self.cookie = set_cookie.split(";")[0]
            headers |= {"X-CSRFToken": self.csrf, "Cookie": self.cookie, "Referer": BASE + "/"}
        return request(method, path, payload, headers)[:2]


def request(method: str, path: str, payload: dict | None = None, headers: dict | None = None):
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            raw, status, cookie = resp.read(), resp.status, resp.headers.get("Set-Cookie", "")
    except urllib.error.HTTPError as exc:
        raw, status, cookie = exc.read(), exc.code, exc.headers.get("Set-Cookie", "")
    try:
        body = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        body = {"raw": raw[:200].decode(errors="replace")}
    return status, body, cookie or ""


def main() -> int:
    sessions = {}
    for role, user in USERS.items():
        s = Session(user)
        check(s.status == 200 and bool(s.token), f"API sign-in over LDAP as {user['uid']} ({role})", s.status)
        sessions[role] = s

    viewer = USERS["Viewer"]
    wrong_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, body, _ = request("POST", "/api/v1/security/login", {
        "username": viewer["uid"], "password": viewer["password"] + "-wrong", "provider": "ldap", "refresh": False,
    })  # fmt: skip
    check(status == 401 and "access_token" not in body, f"wrong password for {viewer['uid']} refused", status)
    print(f"wrong_password_at={wrong_at}")

    v, a = sessions["Viewer"], sessions["Analyst"]
    status, body = v.call("GET", "/api/v1/dashboard/?q=(page_size:100)")
    dashboards = body.get("result", [])
    check(status == 200 and len(dashboards) > 0, f"Viewer lists the dashboards ({len(dashboards)})", status)
    for d in dashboards:
        status, _ = v.call("GET", f"/api/v1/dashboard/{d['id']}")
        check(status == 200, f"Viewer opens dashboard {d['dashboard_title']!r}", status)
        status, body = v.call("PUT", f"/api/v1/dashboard/{d['id']}", {"dashboard_title": "edited by a Viewer"})
        check(status == 403, f"Viewer cannot edit dashboard {d['dashboard_title']!r}", (status, body))

    status, _ = v.call("GET", "/api/v1/sqllab/")
    check(status == 403, "Viewer cannot open SQL Lab", status)
    status, body = v.call("POST", "/api/v1/sqllab/execute/", {"database_id": 1, "sql": "SELECT 1", "runAsync": False})
    check(status == 403, "Viewer cannot run SQL in SQL Lab", (status, body))
    status, _ = a.call("GET", "/api/v1/sqllab/")
    check(status == 200, "Analyst opens SQL Lab", status)

    status, body = v.call("GET", "/api/v1/database/?q=(page_size:100)")
    marts = [db for db in body.get("result", []) if db.get("database_name") == "CGT marts"]
    if check(len(marts) == 1, "Viewer sees the marts database object", body):
        status, body = a.call("POST", "/api/v1/sqllab/execute/", {
            "database_id": marts[0]["id"], "schema": "marts", "runAsync": False,
            "sql": "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'marts'",
        })  # fmt: skip
        rows = body.get("data") or [{}]
        check(status == 200 and rows[0].get("n", 0) > 0, "Analyst runs SQL on the marts in SQL Lab", (status, body))

    nobody = sessions["Public"]
    status, body = nobody.call("GET", "/api/v1/dashboard/?q=(page_size:100)")
    check(status in (200, 403) and not body.get("result"), "a user in no mapped group sees no dashboard", body)

    status, body = v.call("GET", "/api/v1/chart/?q=(page_size:100)")
    charts = body.get("result", [])
    check(status == 200 and len(charts) > 0, f"Viewer lists the charts ({len(charts)})", status)
    for chart in charts:
        status, body = v.call("GET", f"/api/v1/chart/{chart['id']}/data/")
        results = body.get("result") or []
        rows = [r.get("rowcount", 0) for r in results]
        errors = [r.get("error") for r in results if r.get("error")]
        check(
            status == 200 and results and all(n > 0 for n in rows) and not errors,
            f"chart {chart['slice_name']!r} returns rows {rows}",
            (status, errors or body.get("message")),
        )

    req = urllib.request.Request(BASE + "/login/")
    with urllib.request.urlopen(req, timeout=60) as resp:
        csp, cookie = resp.headers.get("Content-Security-Policy", ""), resp.headers.get("Set-Cookie", "")
    check("img-src 'self' blob: data:" in csp and "scarf" not in csp, "CSP allows no third-party image host", csp)
    flags = cookie.lower()
    check("secure" in flags and "httponly" in flags and "samesite=lax" in flags, "session cookie flags", cookie)

    print(json.dumps({"failures": failures, "dashboards": len(dashboards), "charts": len(charts)}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
