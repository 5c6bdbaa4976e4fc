"""Sign in through the proxy in headless Chromium, open the Marquez web UI's lineage graph of a dataset, screenshot it.

    LINEAGE_PASSWORD=... python scripts/marquez_screenshot.py --url https://lineage.site.example --ca site-ca.crt \
        --username alice --namespace 'postgres://db1:5432' --name marts.marts.batch_overview \
        --expect raw --expect lakehouse.ingest --out lineage.png

The browser trusts only the given CA (an NSS database in a throwaway HOME, as a site's managed browser would trust
the site CA): a certificate that does not verify fails the run. It opens the lineage page, is sent to the identity
provider by the proxy, types the user's name and password into the provider's login form (Dex's, or any form with
``login``/``username`` and ``password`` fields), comes back to the lineage page, and waits until the page names the
dataset and its graph has drawn at least ``--min-nodes`` nodes, datasets and jobs, with a node label starting with
each ``--expect`` text (the UI shortens labels to about 15 characters). Writes a full-page PNG and prints one JSON
line.

Exit 0 when the graph rendered with everything expected; 1 with one line on stderr otherwise; 2 on bad usage.
Chromium: Debian's ``/usr/bin/chromium`` over the DevTools protocol (``scripts/chromium.py``);
``certutil`` from ``libnss3-tools``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chromium import Browser  # noqa: E402

# In the page: the lineage graph's nodes (each is a DATASET or JOB caption and a shortened label), the page's text.
# The graph and its minimap are separate top-level SVGs: count the one with the most captions.
GRAPH_JS = r"""
(() => {
  const svgs = [...document.querySelectorAll('svg')].filter((s) => !s.parentElement.closest('svg'));
  const texts = svgs.map((s) => [...s.querySelectorAll('text')].map((t) => t.textContent.trim()))
    .reduce((a, b) => (b.length > a.length ? b : a), []);
  return JSON.stringify({
    datasets: texts.filter((t) => t === 'DATASET').length,
    jobs: texts.filter((t) => t === 'JOB').length,
    labels: texts.filter((t) => t !== 'DATASET' && t !== 'JOB'),
    page: document.body.innerText,
  });
})()
"""
LOGIN_FORM_JS = "!!document.querySelector('input[name=password]')"


def graph_problems(graph: dict, name: str, min_nodes: int, expect: list[str]) -> list[str]:
    """What the drawn graph lacks (empty: it shows the dataset and everything expected)."""
    problems = [] if name in graph["page"] else [f"the page does not name {name}"]
    if graph["datasets"] + graph["jobs"] < min_nodes or not graph["datasets"] or not graph["jobs"]:
        problems.append(f"{graph['datasets']} dataset and {graph['jobs']} job nodes drawn, expected {min_nodes}+")
    shown = [label.removesuffix("...") for label in graph["labels"]]
    problems += [
        f"no node label starts with {e!r}" for e in expect if not any(e.startswith(s) or s.startswith(e) for s in shown)
    ]
    return problems


def trusting_home(ca: Path) -> str:
    """A throwaway HOME whose NSS database (what Chromium on Linux trusts) holds only the given CA."""
    home = tempfile.mkdtemp(prefix="marquez-screenshot-home-")
    nssdb = Path(home) / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    for argv in (
        ["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"],
        ["certutil", "-A", "-d", f"sql:{nssdb}", "-n", "site-ca", "-t", "C,,", "-i", str(ca)],
    ):
        subprocess.run(argv, check=True, capture_output=True, text=True)
    return home


def sign_in_at_provider(browser: Browser, username: str, password: str, back_to: str, timeout: float) -> None:
    browser.wait_for(LOGIN_FORM_JS, timeout, "the proxy did not send the browser to a login form")
    user_field = "input[name=login]" if browser.evaluate("!!document.querySelector('input[name=login]')") else (
        "input[name=username]"
    )  # fmt: skip
    browser.type_into(user_field, username)
    browser.type_into("input[name=password]", password)
    browser.evaluate("document.querySelector('input[name=password]').form.submit()")
    browser.wait_for(
        f"location.origin === {json.dumps(back_to)} && document.readyState === 'complete'",
        timeout,
        f"sign-in as {username} did not come back to {back_to} (wrong password, or not allowed?)",
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="the lineage UI behind the proxy, e.g. https://lineage.site.example")
    ap.add_argument("--ca", type=Path, required=True, help="PEM CA the proxy's certificate must verify with")
    ap.add_argument("--username", required=True)
    ap.add_argument("--password-env", default="LINEAGE_PASSWORD", help="environment variable holding the password")
    ap.add_argument("--namespace", required=True, help="the dataset's namespace, e.g. postgres://db1:5432")
    ap.add_argument("--name", required=True, help="the dataset's name, e.g. marts.marts.batch_overview")
    ap.add_argument("--depth", type=int, default=20, help="graph depth the UI shows")
    ap.add_argument("--expect", action="append", default=[], help="start of a node label the graph must show")
    ap.add_argument("--min-nodes", type=int, default=2, help="fewest nodes (datasets + jobs) the graph must draw")
    ap.add_argument("--out", type=Path, required=True, help="PNG file to write")
    ap.add_argument("--timeout", type=float, default=90)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args(argv)
    password = os.environ.get(args.password_env)
    if not password:
        print(f"marquez_screenshot: set the password in ${args.password_env}", file=sys.stderr)
        return 2
    if not args.ca.is_file():
        print(f"marquez_screenshot: no CA file {args.ca}", file=sys.stderr)
        return 2
    base = args.url.rstrip("/")
    page = (
        f"{base}/lineage/dataset/{urllib.parse.quote(args.namespace, safe='')}/"
        f"{urllib.parse.quote(args.name, safe='')}?depth={args.depth}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    home = trusting_home(args.ca)
    browser = None
    try:
        browser = Browser(args.chromium, env=os.environ | {"HOME": home})  # Chromium reads $HOME/.pki/nssdb
        # A session can end while a slow machine loads the app (short idle timeouts): open the page again, sign in
        # again if the proxy asks, and give each round a share of the time (the app's files are cached by then).
        problems: list[str] = []
        for _ in range(3):
            browser.call("Page.navigate", url=page)
            try:
                browser.wait_for(LOGIN_FORM_JS, 15, "")
            except TimeoutError:
                pass  # still signed in: the page itself opened
            else:
                sign_in_at_provider(browser, args.username, password, base, args.timeout)
            deadline = time.monotonic() + args.timeout / 3
            while True:
                graph = json.loads(browser.evaluate(GRAPH_JS))
                problems = graph_problems(graph, args.name, args.min_nodes, args.expect)
                if not problems or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            if not problems:
                break
        browser.screenshot(args.out)
        if problems:
            raise RuntimeError(f"lineage graph of {args.name}: {'; '.join(problems)} (page in {args.out})")
        result = {
            "page": browser.evaluate("location.href"),
            "user": args.username,
            "datasets": graph["datasets"],
            "jobs": graph["jobs"],
            "labels": sorted(set(graph["labels"]))[:20],
            "png": str(args.out),
        }
        print(json.dumps(result), flush=True)
        return 0
    except (RuntimeError, TimeoutError, OSError, subprocess.CalledProcessError) as exc:
        print(f"marquez_screenshot: {exc}", file=sys.stderr)
        return 1
    finally:
        if browser is not None:
            browser.close()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
