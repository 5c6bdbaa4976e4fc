"""Open every Superset dashboard in headless Chromium as a signed-in user, check each chart rendered, screenshot it.

    SUPERSET_PASSWORD=... python scripts/superset_screenshots.py --url http://localhost:8088 --username vera \
        --out docs/screenshots

Signs in through Superset's own login page (typing into the form, as a person would; works for database, LDAP and
the local admin), lists the dashboards the user may see (``/api/v1/dashboard/``, through the browser's session),
opens each one, waits until every chart holder has finished loading, and fails if any chart shows an error panel or
"No results". Writes ``<out>/<prefix><slug or id>.png`` (full page) per dashboard and prints one JSON line per
dashboard.

Exit 0 when every dashboard rendered cleanly; 1 with one line per problem otherwise; 2 on bad usage.
Chromium: Debian's ``/usr/bin/chromium`` (``--chromium`` to change), driven over the DevTools protocol (websockets).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from websockets.sync.client import connect

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1600,1200",
    "--remote-debugging-port=0",
]

# Evaluated in the page: the state of every chart holder on a dashboard.
CHART_STATE_JS = r"""
(() => {
  const holders = [...document.querySelectorAll('[data-test="dashboard-component-chart-holder"]')];
  return JSON.stringify(holders.map((h) => {
    const title = (h.querySelector('[data-test="editable-title"], .header-title, .editable-title') || {}).textContent;
    const text = h.innerText || '';
    const error = h.querySelector('.ant-alert-error, [class*="alert-error"], [data-test="error-tooltip"]');
    const loading = h.querySelector('[data-test="loading-indicator"], .loading, .ant-skeleton');
    const empty = /No results were returned|No data/i.test(text);
    const drawn = h.querySelector('canvas, svg, table, .superset-legacy-chart-big-number, [class*="big_number"]');
    return {title: (title || '').trim(), error: error ? (error.innerText || 'error panel').trim().slice(0, 200) : null,
            loading: !!loading, empty, drawn: !!drawn};
  }));
})()
"""


class Browser:
    """A headless Chromium and one page, driven over the DevTools protocol."""

    def __init__(self, chromium: str):
        self.profile = tempfile.mkdtemp(prefix="superset-screenshots-")
        self.proc = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError(f"{chromium} did not start (no DevTools port)")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.load(resp) if t["type"] == "page"]
        self.stack = ExitStack()
        self.ws = self.stack.enter_context(connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=10))
        self.next_id = 0
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error'].get('message')}")
                return msg.get("result", {})

    def evaluate(self, expression: str, await_promise: bool = False):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=await_promise)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def goto(self, url: str, timeout: float = 60) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'", timeout, f"{url} did not load")

    def wait_for(self, expression: str, timeout: float, message: str) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(message)
            time.sleep(0.25)

    def type_into(self, selector: str, text: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)

    def screenshot(self, path: Path) -> None:
        height = self.evaluate("Math.ceil(document.documentElement.scrollHeight)") or 1200
        self.call("Emulation.setDeviceMetricsOverride", width=1600, height=int(height), deviceScaleFactor=1,
                  mobile=False)  # fmt: skip
        time.sleep(0.5)  # one layout pass at the new size
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        self.call("Emulation.clearDeviceMetricsOverride")

    def close(self) -> None:
        if getattr(self, "stack", None):
            self.stack.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def sign_in(browser: Browser, base: str, username: str, password: str) -> None:
    browser.goto(f"{base}/login/")
    browser.wait_for("!!document.querySelector('[data-test=\"username-input\"]')", 60, "no login form at /login/")
    browser.type_into('[data-test="username-input"]', username)
    browser.type_into('[data-test="password-input"]', password)
    browser.evaluate("document.querySelector('[data-test=\"login-button\"]').click()")
    try:
        browser.wait_for("!location.pathname.startsWith('/login')", 30, "")
    except TimeoutError:
        raise RuntimeError(f"sign-in as {username} failed (still on the login page)") from None
    browser.wait_for("document.readyState === 'complete'", 60, "the page after sign-in did not load")


def dashboards(browser: Browser) -> list[dict]:
    js = (
        "fetch('/api/v1/dashboard/?q=(page_size:100)', {credentials: 'same-origin'})"
        ".then(r => r.ok ? r.json() : Promise.reject('HTTP ' + r.status)).then(j => JSON.stringify(j.result))"
    )
    return json.loads(browser.evaluate(js, await_promise=True))


def check_dashboard(
    browser: Browser, base: str, dash: dict, out: Path, timeout: float, prefix: str = ""
) -> tuple[dict, list[str]]:
    key = dash.get("slug") or str(dash["id"])
    browser.goto(f"{base}/superset/dashboard/{key}/?standalone=1")
    deadline = time.monotonic() + timeout
    states: list[dict] = []
    while time.monotonic() < deadline:
        states = json.loads(browser.evaluate(CHART_STATE_JS) or "[]")
        settled = states and all(s["error"] or s["empty"] or (s["drawn"] and not s["loading"]) for s in states)
        if settled:
            break
        time.sleep(0.5)
    time.sleep(1.0)  # animations (ECharts) finish before the picture is taken
    states = json.loads(browser.evaluate(CHART_STATE_JS) or "[]")
    png = out / f"{prefix}{key}.png"
    browser.screenshot(png)
    title = dash.get("dashboard_title", key)
    problems = []
    if not states:
        problems.append(f"{title}: no charts rendered within {timeout:.0f}s")
    for s in states:
        name = s["title"] or "(untitled chart)"
        if s["error"]:
            problems.append(f"{title} / {name}: error panel: {s['error']}")
        elif s["empty"]:
            problems.append(f"{title} / {name}: no rows")
        elif not s["drawn"] or s["loading"]:
            problems.append(f"{title} / {name}: still loading after {timeout:.0f}s")
    return {"dashboard": title, "slug": key, "charts": len(states), "png": str(png), "ok": not problems}, problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="Superset base URL, e.g. http://localhost:8088")
    ap.add_argument("--username", required=True)
    ap.add_argument("--password-env", default="SUPERSET_PASSWORD", help="environment variable holding the password")
    ap.add_argument("--out", type=Path, required=True, help="directory for the PNG files")
    ap.add_argument("--timeout", type=float, default=90, help="seconds to wait for a dashboard's charts")
    ap.add_argument("--expect", type=int, default=0, help="fail unless at least this many dashboards are visible")
    ap.add_argument("--prefix", default="", help="prefix of the PNG file names, e.g. lab-")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args(argv)
    password = os.environ.get(args.password_env)
    if not password:
        print(f"superset_screenshots: set the password in ${args.password_env}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    base = args.url.rstrip("/")
    problems: list[str] = []
    browser = Browser(args.chromium)
    try:
        sign_in(browser, base, args.username, password)
        found = dashboards(browser)
        if len(found) < max(args.expect, 1):
            problems.append(f"{args.username} sees {len(found)} dashboards, expected at least {max(args.expect, 1)}")
        for dash in found:
            result, issues = check_dashboard(browser, base, dash, args.out, args.timeout, args.prefix)
            print(json.dumps(result), flush=True)
            problems += issues
    except (RuntimeError, TimeoutError, OSError) as exc:
        problems.append(str(exc))
    finally:
        browser.close()
    for p in problems:
        print(f"superset_screenshots: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
