"""Real requests against the proxy from the controller, as a browser would make them (molecule verify).

Usage: proxy_checks.py HOST_ADDRESS HOST_NAME CA_FILE ISSUER. Passwords come from the environment
(PROXY_CHECK_ALICE_PASSWORD, PROXY_CHECK_BOB_PASSWORD, PROXY_CHECK_SVC_PASSWORD,
PROXY_CHECK_PIPELINES_CLIENT_SECRET). Prints one `ok <check>` line per check and, at the end,
`WRONG_PASSWORD <utc time before the attempt>` so verify can find the failed login in the provider's log. Any failed
check raises: non-zero exit with the reason.

alice is in lakehouse-engineers (console, lineage), bob in lakehouse-qa (docs, lineage), the service account
svc-lineage in lineage-writers (lineage, with bearer tokens from the password grant of the machine client).
"""

from __future__ import annotations

import html
import os
import re
import socket
import ssl
import sys
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urljoin

import requests
import urllib3.util.connection

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # lab_oidc beside this file (run as a script)
from lab_oidc import service_token  # noqa: E402

ADDRESS, NAME, CA, ISSUER = sys.argv[1:5]
PASSWORDS = {
    "alice": os.environ["PROXY_CHECK_ALICE_PASSWORD"],
    "bob": os.environ["PROXY_CHECK_BOB_PASSWORD"],
    "svc-lineage": os.environ["PROXY_CHECK_SVC_PASSWORD"],
}
MACHINE_CLIENT = ("cgt-lakehouse-pipelines", os.environ["PROXY_CHECK_PIPELINES_CLIENT_SECRET"])
BASE = f"https://{NAME}"  # the default server: /console/ (MinIO console), /docs/ (static + /docs/minio/: S3 API)
VHOST = f"https://{ADDRESS}"  # the lineage UI on a server name of its own: Marquez web (static) + /api/ (Marquez)
COOKIE = "_cgt_lakehouse"
# What any UI's page, script or API answer shows (not its path: the sign-in redirect carries that in its state).
UI_CONTENT = re.compile(r'LAB-UI|MinIO|<title>Marquez</title>|lineage-graph-dots|"namespaces"\s*:')

# The controller has no DNS entry for the lab host's name: resolve it to its lab address, as a site's DNS would.
_create_connection = urllib3.util.connection.create_connection


def _resolve_lab_name(address, *args, **kwargs):
    host, port = address
    return _create_connection((ADDRESS if host == NAME else host, port), *args, **kwargs)


urllib3.util.connection.create_connection = _resolve_lab_name


def ok(check: str) -> None:
    print(f"ok {check}", flush=True)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def get(session: requests.Session, url: str, **kwargs) -> requests.Response:
    return session.get(url, verify=CA, allow_redirects=False, timeout=30, **kwargs)


def sign_in(session: requests.Session, url: str, user: str, password: str) -> requests.Response:
    """Open `url` like a browser: follow redirects, fill the provider's login form once, return the final response."""
    response = get(session, url)
    for _ in range(12):
        if response.is_redirect:
            response = get(session, urljoin(response.url, response.headers["Location"]))
            continue
        form = re.search(r'<form method="post" action="([^"]+)"', response.text)
        if response.status_code == 200 and form and 'name="password"' in response.text:
            action = urljoin(response.url, html.unescape(form.group(1)))
            response = session.post(
                action, data={"login": user, "password": password}, verify=CA, allow_redirects=False, timeout=30
            )
            continue
        return response
    raise AssertionError(f"{url}: too many redirects")


def expect_sign_in_redirect(response: requests.Response, what: str) -> None:
    location = response.headers.get("Location", "")
    expect(response.status_code == 302, f"{what}: expected 302 to the provider, got {response.status_code}")
    expect(location.startswith(ISSUER + "/auth"), f"{what}: redirected to {location!r}, not the provider")
    expect(not UI_CONTENT.search(response.text), f"{what}: UI content before sign-in")


def check_nothing_without_sign_in() -> None:
    for url in (
        f"{BASE}/",
        f"{BASE}/console/",
        f"{BASE}/console/api/v1/session",
        f"{BASE}/docs/",
        f"{BASE}/docs/index.html",
        f"{BASE}/elsewhere",
        f"{BASE}/docs/minio/health/live",
        f"{VHOST}/",
        f"{VHOST}/lineage/dataset/x/y",
        f"{VHOST}/bundle.js",
        f"{VHOST}/api/v1/namespaces",
    ):
        expect_sign_in_redirect(get(requests.Session(), url), url)
    for url in (f"{BASE}/console/api/v1/login", f"{VHOST}/api/v1/lineage"):
        response = requests.post(url, json={}, verify=CA, allow_redirects=False, timeout=30)
        expect_sign_in_redirect(response, f"POST {url}")
    ok("no UI, API or static file answers before sign-in (302 to the provider, no content)")


def check_wrong_password() -> str:
    session = requests.Session()
    before = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = sign_in(session, f"{BASE}/docs/", "bob", PASSWORDS["bob"] + "-wrong")
    expect(response.status_code in (200, 401), f"wrong password: provider answered {response.status_code}")
    expect("Invalid Username and password" in response.text, "wrong password: the provider did not refuse it")
    expect(COOKIE not in session.cookies, "wrong password: the proxy issued a session cookie")
    expect_sign_in_redirect(get(session, f"{BASE}/docs/"), "after a wrong password")
    ok("a wrong password is refused by the provider and gives no session")
    return before


def check_groups() -> requests.Session:
    alice = requests.Session()
    response = sign_in(alice, f"{BASE}/console/", "alice", PASSWORDS["alice"])
    expect(response.status_code == 200, f"alice /console/: {response.status_code}")
    expect("MinIO" in response.text, "alice /console/: not the MinIO console")
    expect(response.url.startswith(f"{BASE}/console/"), f"alice ended at {response.url}, not where she started")
    expect(COOKIE in alice.cookies, "alice: no session cookie")
    cookie = next(c for c in alice.cookies if c.name == COOKIE)
    expect(cookie.secure and cookie.has_nonstandard_attr("HttpOnly"), "session cookie not Secure+HttpOnly")
    ok("alice (lakehouse-engineers) signs in at the provider and lands on the MinIO console she asked for")
    response = get(alice, f"{BASE}/docs/")
    expect(response.status_code == 403, f"alice /docs/: expected 403, got {response.status_code}")
    expect("LAB-UI-DOCS" not in response.text, "alice /docs/: content leaked with the 403")
    ok("alice gets 403 on docs (lakehouse-qa only)")
    response = get(alice, f"{BASE}/")
    expect(response.status_code == 200 and "/console/" in response.text, "alice: start page with the UI links")
    response = get(alice, f"{BASE}/no-such-page")
    expect(response.status_code == 404, f"signed in, unknown page: {response.status_code}")
    ok("signed-in start page lists the UIs; unknown paths are 404 after sign-in")
    response = sign_in(alice, f"{VHOST}/", "alice", PASSWORDS["alice"])
    expect(
        response.status_code == 200 and "<title>Marquez</title>" in response.text,
        f"alice lineage: {response.status_code}",
    )
    ok("alice opens the lineage UI on its own server name (the Marquez web UI's static files)")

    bob = requests.Session()
    response = sign_in(bob, f"{BASE}/docs/", "bob", PASSWORDS["bob"])
    expect(response.status_code == 200 and "LAB-UI-DOCS" in response.text, f"bob /docs/: {response.status_code}")
    response = get(bob, f"{BASE}/docs/some/deep/link")
    expect(response.status_code == 200 and "LAB-UI-DOCS" in response.text, "bob: SPA fallback to index.html")
    ok("bob (lakehouse-qa) signs in and opens docs; unknown paths under it answer its index.html (single-page app)")
    for path in ("/console/", "/console/api/v1/session"):
        response = get(bob, BASE + path)
        expect(response.status_code == 403, f"bob {path}: expected 403, got {response.status_code}")
        expect("MinIO" not in response.text, f"bob {path}: console content leaked")
    ok("bob gets 403 on the console and its API (lakehouse-engineers only)")
    response = get(bob, f"{BASE}/docs/minio/health/live")
    expect(response.status_code == 200, f"bob docs API /docs/minio/health/live: {response.status_code}")
    ok("bob reaches the docs UI's API path, proxied to the real MinIO S3 API over verified TLS")
    response = sign_in(bob, f"{VHOST}/api/v1/namespaces", "bob", PASSWORDS["bob"])
    expect(response.status_code == 200 and "namespaces" in response.json(), f"bob lineage API: {response.status_code}")
    response = get(bob, f"{VHOST}/jobs")
    expect(response.status_code == 200 and "<title>Marquez</title>" in response.text, "bob lineage UI deep link")
    ok("bob opens the lineage UI (a deep link answers the Marquez app) and its API, proxied to the real Marquez")
    return alice


def check_headers(session: requests.Session) -> None:
    for response in (get(session, f"{BASE}/console/"), get(requests.Session(), f"{BASE}/console/")):
        hsts = response.headers.get("Strict-Transport-Security", "")
        expect(hsts.startswith("max-age=") and int(hsts.split("=")[1].split(";")[0]) >= 31536000, f"HSTS: {hsts!r}")
        expect(response.headers.get("X-Content-Type-Options") == "nosniff", "X-Content-Type-Options")
        expect(response.headers.get("X-Frame-Options") in ("SAMEORIGIN", "DENY"), "X-Frame-Options")
        expect("nginx/" not in response.headers.get("Server", ""), "Server header shows the nginx version")
    ok("HSTS (1 year), nosniff, one X-Frame-Options (the UI's DENY or ours) on answers and redirects; no version")


def check_bearer_tokens() -> None:
    """A machine client (the lineage transport) calls an API behind the proxy with a token of a named account."""
    token = service_token(ISSUER, "svc-lineage", PASSWORDS["svc-lineage"], MACHINE_CLIENT, CA)
    bearer = {"Authorization": f"Bearer {token}"}
    response = requests.get(f"{VHOST}/api/v1/namespaces", headers=bearer, verify=CA, allow_redirects=False, timeout=30)
    expect(response.status_code == 200, f"bearer on the lineage API: {response.status_code}")
    response = requests.get(f"{BASE}/console/", headers=bearer, verify=CA, allow_redirects=False, timeout=30)
    expect(response.status_code == 403, f"bearer on the console (not in its groups): {response.status_code}")
    tampered = {"Authorization": f"Bearer {token[:-8]}AAAAAAAA"}
    response = requests.get(f"{VHOST}/api/v1/namespaces", headers=tampered, verify=CA, timeout=30)
    expect(response.status_code == 403, f"tampered bearer: {response.status_code}")
    ok("a service account's bearer token opens the API its group allows, not the console; a tampered one gets 403")


def check_idle_timeout() -> None:
    """The scenario sets a 12 s idle timeout with renewal after 3 s: activity keeps a session, idleness ends it."""
    bob = requests.Session()
    response = sign_in(bob, f"{BASE}/docs/", "bob", PASSWORDS["bob"])
    expect(response.status_code == 200, f"idle test sign-in: {response.status_code}")
    signed_in = time.monotonic()
    for _ in range(4):  # 4 x 5 s of activity = 20 s > the 12 s timeout
        time.sleep(5)
        response = get(bob, f"{BASE}/docs/")
        expect(response.status_code == 200, f"active session ended after {time.monotonic() - signed_in:.0f} s")
    ok(f"an active session outlives the idle timeout ({time.monotonic() - signed_in:.0f} s > 12 s, renewed)")
    time.sleep(14)
    expect_sign_in_redirect(get(bob, f"{BASE}/docs/"), "after 14 s idle")
    ok("after 14 s without a request the session has ended (idle timeout 12 s): sign-in again")


def check_logout(alice: requests.Session) -> None:
    response = get(alice, f"{BASE}/console/")
    expect(response.status_code == 200, f"alice before logout: {response.status_code}")
    response = get(alice, f"{BASE}/logout")
    expect(response.is_redirect, f"/logout: {response.status_code}")
    response = get(alice, urljoin(response.url, response.headers["Location"]))
    expect(response.is_redirect, f"sign_out: {response.status_code}")
    expect_sign_in_redirect(get(alice, f"{BASE}/console/"), "after logout")
    ok("logout ends the session: the console asks to sign in again")


def check_plain_http() -> None:
    for method, path in (("GET", "/console/?a=1&b=2"), ("GET", "/oauth2/start"), ("POST", "/docs/"), ("GET", "/")):
        response = requests.request(method, f"http://{ADDRESS}{path}", allow_redirects=False, timeout=30)
        expect(response.status_code == 301, f"http {method} {path}: {response.status_code}")
        expect(response.headers["Location"] == f"https://{ADDRESS}{path}", f"http {path}: {response.headers}")
        expect("LAB-UI" not in response.text and "MinIO" not in response.text, f"http {path}: content")
        expect(COOKIE not in response.headers.get("Set-Cookie", ""), f"http {path}: cookie over plain HTTP")
    ok("plain HTTP answers only 301 to the same URL over HTTPS (GET and POST, UI and sign-in paths)")


def tls_handshake(host: str, port: int, ctx: ssl.SSLContext) -> str:
    with socket.create_connection((host, port), timeout=10) as raw, ctx.wrap_socket(raw, server_hostname=host) as tls:
        return tls.version()


def legacy_client(maximum: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(CA)
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = maximum
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client really offer TLS 1.0/1.1
    return context


def check_tls_versions() -> None:
    # Control: this client can complete a TLS 1.1 handshake with a server that allows it (a loopback server with the
    # lab certificate); otherwise the refusal below would prove nothing.
    pki = os.path.dirname(CA)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(os.path.join(pki, f"{NAME}.crt"), os.path.join(pki, f"{NAME}.key"))
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1
    server_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_once() -> None:
        conn, _ = listener.accept()
        try:
            server_ctx.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            conn.close()

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    control = legacy_client(ssl.TLSVersion.TLSv1_1)
    control.check_hostname = False
    version = tls_handshake("127.0.0.1", port, control)
    thread.join(5)
    listener.close()
    expect(version == "TLSv1.1", f"control handshake gave {version}")
    for maximum in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        try:
            version = tls_handshake(ADDRESS, 443, legacy_client(maximum))
        except ssl.SSLError:
            continue
        raise AssertionError(f"the proxy accepted {version}")
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = ssl.create_default_context(cafile=CA)
        context.minimum_version = context.maximum_version = version
        expect(tls_handshake(ADDRESS, 443, context) == version.name.replace("v1_", "v1."), f"{version} refused")
    ok("TLS 1.0 and 1.1 refused (the same client does TLS 1.1 with a server that allows it); 1.2 and 1.3 accepted")


def check_chain() -> None:
    for url in (f"{BASE}/", f"{VHOST}/", ISSUER + "/.well-known/openid-configuration"):
        requests.get(url, verify=CA, allow_redirects=False, timeout=30)  # raises unless the chain verifies
        try:
            requests.get(url, verify=True, allow_redirects=False, timeout=30)
        except requests.exceptions.SSLError:
            continue
        raise AssertionError(f"{url} verified without the lab CA")
    ok("the proxy's and the provider's certificates verify with the lab CA (and not with the public trust store)")


def main() -> int:
    check_nothing_without_sign_in()
    check_plain_http()
    check_tls_versions()
    check_chain()
    before_wrong = check_wrong_password()
    alice = check_groups()
    check_headers(alice)
    check_logout(alice)
    check_bearer_tokens()
    check_idle_timeout()
    print(f"WRONG_PASSWORD {before_wrong}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
