"""lab/e2e's checks through the sign-in proxies, as people use the lakehouse (run from the controller).

    python lab/e2e_browser.py --facts .lakehouse/lab-e2e/first/facts.json --out .lakehouse/lab-e2e/first

Facts come from lab/e2e-checks.yml (UI addresses, the landed batches, the lab CA, the vault with the lab users'
passwords). With TLS verified against the lab CA:
  1. every UI and the lineage API answer a request without a session with a redirect to sign-in (or 401);
  2. Alice (engineers) signs in at the identity provider (Dex's form) and then opens every UI (200);
     Vera (BI viewers) opens Superset and gets 403 from the UIs her group may not open;
  3. the lineage graph upstream of the batch_overview mart reaches the raw files (Marquez API through the proxy);
  4. headless Chromium signs Vera in (proxy, then Superset's OIDC sign-in), opens every dashboard, fails on an
     error panel or an empty chart, and the batch overview shows the landed batches; PNGs kept in --out.
Prints one line per check and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import re
import sys
import time
import urllib.parse
from pathlib import Path

import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "dashboards"))
sys.path.insert(0, str(REPO / "scripts"))
import chromium  # noqa: E402  (scripts/chromium.py: the project's one DevTools driver)
import screenshots as shots  # noqa: E402  (dashboards/screenshots.py: the project's one Superset screenshot tool)

from tests.fixtures.marquez import upstream  # noqa: E402

RESULTS: list[bool] = []
# Every check line (name, ok, detail, UTC time), written to --out/checks.json: the qualification evidence reads it
# (pipelines/qualify/evidence.py maps each line to its check id).
LINES: list[dict] = []


def check(name: str, ok: bool, detail: object = "") -> bool:
    RESULTS.append(ok)
    LINES.append({"name": name, "ok": ok, "detail": str(detail)[:2000],
                  "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})  # fmt: skip
    print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else f': {detail}'}", flush=True)
    return ok


def dex_form(page: requests.Response) -> str:
    """The action URL of Dex's username/password form on page (absolute)."""
    m = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    if not m or 'name="password"' not in page.text:
        raise RuntimeError(f"no sign-in form at {page.url} (HTTP {page.status_code})")
    return urllib.parse.urljoin(page.url, html.unescape(m[1]))


def refused_sign_in(facts_file: Path) -> str:
    """A sign-in with a wrong password at the identity provider (through the dashboards' proxy), for the OQ's
    audit-trail check (OQ-AUDIT-01 looks for it in the provider's log); the provider must answer with its form
    again, not a session. Returns a line for the log; RuntimeError when the password was not refused."""
    facts = json.loads(Path(facts_file).read_text())
    s = requests.Session()
    s.verify, s.trust_env = facts["ca"], False
    page = sign_in(s, facts["uis"]["superset"], "alice", "wrong-password-for-qualification")
    if 'name="password"' not in page.text:
        raise RuntimeError(f"a wrong password was not refused at the identity provider ({page.url})")
    return f"refused sign-in: ended at {page.url} HTTP {page.status_code}"


def sign_in(session: requests.Session, url: str, user: str, password: str) -> requests.Response:
    """Open url; where the proxy sends us to the identity provider, sign in there. Returns the page we end on."""
    page = session.get(url, timeout=60)
    if 'name="password"' in page.text and page.url.split("/")[2] != url.split("/")[2]:
        page = session.post(dex_form(page), data={"login": user, "password": password}, timeout=60)
    return page


def unauthenticated(facts: dict, ca: str) -> None:
    for name, url in sorted(facts["uis"].items()):
        paths = [url] + ([url + "api/v1/namespaces"] if name == "lineage" else [])
        for u in paths:
            r = requests.get(u, verify=ca, allow_redirects=False, timeout=30)
            where = r.headers.get("Location", "")
            to_sign_in = r.status_code in (302, 303) and ("/oauth2/" in where or facts["issuer"] in where)
            check(f"{name}: {u} without a session -> {r.status_code} {where[:60]}",
                  r.status_code == 401 or to_sign_in, r.status_code)  # fmt: skip


def access(facts: dict, ca: str, user: str, password: str, groups: list[str]) -> requests.Session:
    s = requests.Session()
    s.verify = ca
    s.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override the lab CA
    for name, url in sorted(facts["uis"].items()):
        allowed = bool(set(facts["ui_groups"][name]) & set(groups))
        try:
            r = sign_in(s, url, user, password)  # each UI host has its own proxy, so its own session cookie
        except (RuntimeError, requests.RequestException) as exc:
            check(f"{user} opens {name}", False, exc)
            continue
        want = 200 if allowed else 403
        check(f"{user} ({', '.join(groups)}) opens {name}: HTTP {r.status_code}",
              r.status_code == want and r.url.startswith(url), f"expected {want} at {url}, got {r.url}")  # fmt: skip
    return s


def lineage(facts: dict, s: requests.Session) -> None:
    base = facts["uis"]["lineage"] + "api/v1"
    marts = []
    for ns in s.get(f"{base}/namespaces", timeout=30).json()["namespaces"]:
        # Namespaces are URLs (postgres://host:port): URL-encoded, the proxy must pass %2F to Marquez as sent.
        listing = s.get(f"{base}/namespaces/{urllib.parse.quote(ns['name'], safe='')}/datasets?limit=1000", timeout=30)
        if not check(f"datasets of namespace {ns['name']} listed through the proxy (HTTP {listing.status_code})",
                     listing.status_code == 200, listing.text[:200]):  # fmt: skip
            continue
        marts += [f"dataset:{ns['name']}:{d['name']}" for d in listing.json()["datasets"]]
    marts = [m for m in marts if m.endswith(".batch_overview")]
    if not check("the batch_overview mart is in Marquez (through the proxy)", bool(marts), marts):
        return
    graph = s.get(f"{base}/lineage", params={"nodeId": marts[0], "depth": 60}, timeout=60).json()
    seen = upstream(graph, marts[0])
    raw = [n for n in seen if n.startswith("dataset:") and ("s3://raw" in n or "/raw/" in n)]
    check(f"lineage raw -> mart: {len(raw)} raw files upstream of {marts[0]}", bool(raw), sorted(seen)[:20])
    # Who wrote each raw file: the run that created its dataset version. (The graph's edges follow each job's newest
    # version only: once a later ingest run has seen other files, the earlier raw files lose their edge to it.)
    writers = {}
    for n in raw:
        ns, name = n.removeprefix("dataset:").rsplit(":", 1)  # the namespace is a URL (s3://raw): split at the last
        q = urllib.parse.quote
        got = s.get(f"{base}/namespaces/{q(ns, safe='')}/datasets/{q(name, safe='')}/versions?limit=1", timeout=30)
        versions = got.json().get("versions", []) if got.ok else []
        writers[n] = [(v.get("createdByRun") or {}).get("jobVersion", {}).get("name", "") for v in versions]
    check("each raw file was written by the ingest step",
          bool(raw) and all(w and w[0].endswith(".lakehouse.ingest") for w in writers.values()),
          {n: w for n, w in list(writers.items())[:5]})  # fmt: skip


def lab_spkis(ca_path: str) -> str:
    """sha256 of the public keys of the lab's server certificates (the ones beside the CA), for Chromium's
    --ignore-certificate-errors-spki-list: the lab CA is not in Chromium's store, and the servers send no chain."""
    hashes = []
    for crt in sorted(Path(ca_path).parent.glob("*.crt")):
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
        der = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        hashes.append(base64.b64encode(hashlib.sha256(der).digest()).decode())
    return ",".join(hashes)


DEX_FORM = "!!document.querySelector('input[name=password]')"
# Charts that show no rows when the data has nothing of the kind: the export lab-e2e lands has no integrity flags,
# and its endotoxin results are below the detection limit ("<0.05": no numeric value for an XmR chart).
EMPTY_ON_CLEAN = {"Flagged rows per rule", "XmR: endotoxin"}


def superset_signin(b, base: str, user: str, password: str, timeout: float) -> int:
    """Sign in to Superset through its proxy, as a person does: the proxy sends the browser to the identity provider
    (sign-in 1), back at Superset its own OIDC sign-in (`/login/site-idp`) goes to the provider again (sign-in 2:
    Dex keeps no session), then Superset's pages. Driven by what the page shows (a provider form, or a Superset
    page that is not a sign-in step), never by fixed sleeps. Returns how many forms were filled in."""
    host = urllib.parse.urlsplit(base).netloc
    at_superset = (
        f"location.host === {json.dumps(host)} && document.readyState === 'complete'"
        " && !/^\\/(login|oauth2|oauth-authorized)\\b/.test(location.pathname)"
    )
    deadline = time.monotonic() + timeout
    b.goto(base + "/login/site-idp", timeout)
    forms = 0
    while True:
        left = max(1.0, deadline - time.monotonic())
        b.wait_for(f"({DEX_FORM} && document.readyState === 'complete') || ({at_superset})", left,
                   "neither a sign-in form nor a Superset page")  # fmt: skip
        if b.evaluate(at_superset):
            return forms
        forms += 1
        if forms > 2:
            raise RuntimeError("the identity provider asked for the password a third time (wrong password?)")
        b.type_into("input[name=login]", user)
        b.type_into("input[name=password]", password)
        b.mark_document()
        b.evaluate("document.querySelector('input[name=password]').form.submit()")
        b.wait_for(chromium.NEW_DOCUMENT, max(1.0, deadline - time.monotonic()), "the sign-in form was not submitted")


def where(b) -> str:
    """The page the browser is on, for an error message."""
    try:
        return b.evaluate("location.href + ' | ' + (document.body ? document.body.innerText : '').slice(0, 300)")
    except RuntimeError as exc:
        return f"(page unreadable: {exc})"


def dashboards(facts: dict, ca: str, user: str, password: str, out: Path) -> None:
    base = facts["uis"]["superset"].rstrip("/")
    # Chromium accepts the lab's server keys for this run only (certificate errors are not ignored for anything else).
    shots.FLAGS.append(f"--ignore-certificate-errors-spki-list={lab_spkis(ca)}")
    b = shots.Browser("/usr/bin/chromium")
    try:
        try:
            t0 = time.monotonic()
            forms = superset_signin(b, base, user, password, 300)
        except (RuntimeError, TimeoutError) as exc:
            b.screenshot(out / "superset-signin-failed.png")
            raise RuntimeError(f"Superset sign-in: {exc}; at {where(b)}") from None
        check(f"{user} signed in to Superset through the proxy ({forms} provider forms, {time.monotonic() - t0:.0f} s)",
              forms == 2, f"{forms} provider forms (expected 2: the proxy's and Superset's)")  # fmt: skip
        found = shots._api(b, "/api/v1/dashboard/?q=(page_size:100)")
        seen_count = False
        check(f"{user} sees {len(found)} dashboards in Superset", len(found) >= 1, found)
        for dash in found:
            result, problems = shots.check_dashboard(b, base, dash, out, 300, prefix="superset-")
            # A chart that is empty by design on clean data (the synthetic export has no integrity flags) is not a
            # defect; any other empty chart, error panel or undrawn chart is.
            empty_ok = [p for p in problems if p.endswith(": no rows") and p.split(" / ")[-1][:-9] in EMPTY_ON_CLEAN]
            problems = [p for p in problems if p not in empty_ok]
            png = Path(result["png"]).name + (f"; empty on clean data: {len(empty_ok)}" if empty_ok else "")
            check(f"dashboard {result['dashboard']}: {result['charts']} charts drawn ({png})", not problems, problems)
            text = b.evaluate("document.body.innerText") or ""
            if (m := re.search(r"(\d+)\s*batches started", text)) is not None:
                check(f"dashboard {result['dashboard']} counts the landed batches: {m[1]} batches started",
                      int(m[1]) == len(facts["batches"]), f"expected {len(facts['batches'])}")  # fmt: skip
                seen_count = True
        check("a dashboard counts the batches started", seen_count, "no 'batches started' figure on any dashboard")
    except (RuntimeError, TimeoutError, OSError) as exc:
        check("Chromium through the proxy to the dashboards", False, exc)
    finally:
        b.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--facts", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    facts = json.loads(args.facts.read_text())
    vault = yaml.safe_load(Path(facts["vault"]).read_text())
    ca = facts["ca"]
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    unauthenticated(facts, ca)
    alice = access(facts, ca, "alice", vault["vault_lab_password_alice"], ["lakehouse-engineers"])
    access(facts, ca, "vera", vault["vault_lab_password_vera"], ["lakehouse-bi-viewers"])
    lineage(facts, alice)
    dashboards(facts, ca, "vera", vault["vault_lab_password_vera"], args.out)
    (args.out / "checks.json").write_text(json.dumps(LINES, indent=2) + "\n")
    print(f"E2E: {sum(RESULTS)}/{len(RESULTS)} proxy and browser checks passed in {time.monotonic() - t0:.0f} s")
    return 0 if all(RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
