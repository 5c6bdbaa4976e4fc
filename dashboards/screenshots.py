"""Open every dashboard in headless Chromium as a signed-in user, fail on any chart that is not drawn, screenshot it.

    DASHBOARDS_PASSWORD=... python dashboards/screenshots.py --url http://127.0.0.1:8088 --username vera \\
        --out docs/screenshots --prefix lab- --expect 4

The one screenshot tool of the project: `make dashboards-screenshots` (dashboards/local.py) and the superset role
test (roles/superset/molecule/default/verify.yml) both run it. Any Python with `websockets` runs it (the project's
venv); the browser is Debian's /usr/bin/chromium, driven over the DevTools protocol (no chromedriver).

Per dashboard the user may see (``/api/v1/dashboard/``, through the browser's session after signing in through
Superset's own login form, as a person would: database, LDAP or the local admin):

1. open it with the window as tall as the whole dashboard, so every chart is in view (Superset only draws the
   charts in or near the viewport);
2. wait until every chart's data request (``/api/v1/chart/data``) has answered, no chart holder shows a spinner,
   and every chart's canvas/SVG has stopped changing between two looks (ECharts animates its first drawing);
3. fail on a data request answering an HTTP error, a chart showing an error panel or "No results", a chart not
   drawn within ``--timeout``, or fewer charts on the page than the dashboard has;
4. save ``<out>/<prefix><slug>.png`` (the whole dashboard) and print one JSON line.

Exit 0 when every dashboard rendered cleanly; 1 with one line per problem on stderr otherwise; 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# The project's one DevTools browser driver (scripts/chromium.py); FLAGS is that module's list (lab/e2e_browser.py
# appends to it).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from chromium import FLAGS, WINDOW_HEIGHT  # noqa: E402,F401
from chromium import Browser as _Browser  # noqa: E402

CHART_DATA_PATH = "/api/v1/chart/data"

# Evaluated in the page: how tall the dashboard's content is (the bottom of its last chart or markdown holder, not
# the page's scrollHeight, which grows with the viewport: the dashboard grid is at least as tall as the window).
CONTENT_HEIGHT_JS = r"""
(() => {
  const parts = [...document.querySelectorAll('[data-test="dashboard-component-chart-holder"]')];
  const bottom = Math.max(0, ...parts.map((e) => e.getBoundingClientRect().bottom + window.scrollY));
  return Math.ceil(bottom) + 40;
})()
"""
# Evaluated in the page: the state of every chart on a dashboard. `signature` changes while a chart is still
# drawing (canvas pixels for ECharts, the markup for tables and SVG).
CHART_STATE_JS = r"""
(() => {
  // Charts only (markdown components sit in the same holders); the window is dashboard-tall by now, so every
  // chart's component exists.
  const charts = [...document.querySelectorAll('[data-test="chart-grid-component"]')];
  return JSON.stringify(charts.map((c) => {
    const text = c.innerText || '';
    const error = c.querySelector('[data-test="error-tooltip"], .ant-alert-error, [role="alert"]');
    const loading = c.querySelector('[data-test="loading-indicator"], .loading, .ant-skeleton');
    const body = c.querySelector('[data-test="chart-container"]');
    const drawn = body && body.querySelector('canvas, svg, table, .superset-legacy-chart-big-number');
    let signature = '';
    if (drawn) {
      for (const canvas of body.querySelectorAll('canvas')) {
        const data = canvas.toDataURL();
        let h = 0;
        for (let i = 0; i < data.length; i += 7) h = (h * 31 + data.charCodeAt(i)) | 0;
        signature += canvas.width + 'x' + canvas.height + ':' + h + ';';
      }
      signature += body.innerHTML.length;
    }
    return {title: c.getAttribute('data-test-chart-name') || '', id: c.getAttribute('data-test-chart-id'),
            error: error ? (error.innerText || error.getAttribute('aria-label') || 'error panel').trim().slice(0, 200)
                         : null,
            loading: !!loading, empty: /No results were returned/i.test(text), drawn: !!drawn, signature};
  }));
})()
"""


# Evaluated in the page: what the login page shows after a refused sign-in (an alert, a form error, a message).
SIGN_IN_MESSAGE_JS = r"""
[...document.querySelectorAll('.ant-alert, .ant-message, .ant-form-item-explain-error, [role="alert"], .alert')]
  .map((e) => e.innerText).join(' / ')
"""


class Browser(_Browser):
    """The project's browser driver, also tracking the chart-data requests of the page it last opened."""

    domains = ("Network.enable",)

    def __init__(self, chromium: str):
        self.pending: dict[str, str] = {}  # requestId -> URL of chart-data requests in flight
        self.answered = 0
        self.failed: list[str] = []
        self.login_answers: list[str] = []  # "METHOD status" of every answer to a /login URL (sign-in diagnostics)
        super().__init__(chromium)

    def on_event(self, msg: dict) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Network.responseReceived" and "/login" in params["response"]["url"]:
            self.login_answers.append(f"{params['type']} {params['response']['status']}")
        if method == "Network.requestWillBeSent" and CHART_DATA_PATH in params["request"]["url"]:
            self.pending[params["requestId"]] = params["request"]["url"]
        elif method == "Network.responseReceived" and params["requestId"] in self.pending:
            if params["response"]["status"] >= 400:
                self.failed.append(f"chart data request answered HTTP {params['response']['status']}")
        elif method in ("Network.loadingFinished", "Network.loadingFailed") and params["requestId"] in self.pending:
            del self.pending[params["requestId"]]
            self.answered += 1
            if method == "Network.loadingFailed" and not params.get("canceled"):
                self.failed.append(f"chart data request failed: {params.get('errorText')}")

    def goto(self, url: str, timeout: float = 60) -> None:
        self.pending.clear()
        self.answered, self.failed = 0, []
        super().goto(url, timeout)


def sign_in(browser: Browser, base: str, username: str, password: str) -> None:
    browser.goto(f"{base}/login/")
    browser.wait_for("!!document.querySelector('[data-test=\"username-input\"]')", 60, "no login form at /login/")
    browser.type_into('[data-test="username-input"]', username)
    browser.type_into('[data-test="password-input"]', password)
    browser.evaluate("document.querySelector('[data-test=\"login-button\"]').click()")
    try:
        # Generous: on a loaded machine the directory bind, the role sync and the first page take a while.
        browser.wait_for("!location.pathname.startsWith('/login')", 90, "")
    except TimeoutError:
        shown = browser.evaluate(SIGN_IN_MESSAGE_JS) or ""
        answers = ", ".join(browser.login_answers) or "none"
        raise RuntimeError(
            f"sign-in as {username} failed (still on the login page; answers to /login: {answers}; "
            f"page says: {shown.strip()[:200] or 'nothing'})"
        ) from None
    browser.wait_for("document.readyState === 'complete'", 60, "the page after sign-in did not load")


def _api(browser: Browser, path: str):
    js = (
        f"fetch({json.dumps(path)}, {{credentials: 'same-origin'}})"
        ".then(r => r.ok ? r.json() : Promise.reject('HTTP ' + r.status)).then(j => JSON.stringify(j.result))"
    )
    return json.loads(browser.evaluate(js, await_promise=True))


def check_dashboard(browser: Browser, base: str, dash: dict, out: Path, timeout: float, prefix: str = ""):
    """Open one dashboard, wait until every chart is drawn and still, screenshot it; (result, problems)."""
    key = dash.get("slug") or str(dash["id"])
    title = dash.get("dashboard_title", key)
    expected = len(_api(browser, f"/api/v1/dashboard/{dash['id']}/charts"))
    browser.call("Emulation.clearDeviceMetricsOverride")
    browser.goto(f"{base}/superset/dashboard/{key}/?standalone=1")
    deadline = time.monotonic() + timeout
    states: list[dict] = []
    previous: list[str] = []
    height = WINDOW_HEIGHT
    while time.monotonic() < deadline:
        states = json.loads(browser.evaluate(CHART_STATE_JS) or "[]")
        content = int(browser.evaluate(CONTENT_HEIGHT_JS))
        if content > height:  # charts below the fold are drawn only once they are in view
            height = content
            browser.fit_height(height)
            previous = []
            continue
        signatures = [s["signature"] for s in states]
        settled = (
            len(states) >= expected
            and not browser.pending
            and browser.answered > 0
            and all(s["error"] or s["empty"] or (s["drawn"] and not s["loading"]) for s in states)
        )
        if settled and signatures == previous:
            break
        previous = signatures if settled else []
        time.sleep(0.3)
    png = out / f"{prefix}{key}.png"
    browser.capture(png)
    problems = [f"{title}: {f}" for f in browser.failed]
    if len(states) < expected:
        problems.append(f"{title}: {len(states)} of {expected} charts on the page after {timeout:.0f}s")
    for s in states:
        name = s["title"] or f"chart {s['id']}"
        if s["error"]:
            problems.append(f"{title} / {name}: error panel: {s['error']}")
        elif s["empty"]:
            problems.append(f"{title} / {name}: no rows")
        elif not s["drawn"] or s["loading"]:
            problems.append(f"{title} / {name}: not drawn after {timeout:.0f}s")
    if not problems and time.monotonic() >= deadline:
        problems.append(f"{title}: charts still changing or data requests pending after {timeout:.0f}s")
    result = {"dashboard": title, "slug": key, "charts": len(states), "data_requests": browser.answered,
              "png": str(png), "ok": not problems}  # fmt: skip
    return result, problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="Superset base URL, e.g. http://127.0.0.1:8088")
    ap.add_argument("--username", required=True)
    ap.add_argument("--password-env", default="DASHBOARDS_PASSWORD", help="environment variable with the password")
    ap.add_argument("--out", type=Path, required=True, help="directory for the PNG files")
    ap.add_argument("--prefix", default="", help="prefix of the PNG file names, e.g. lab-")
    ap.add_argument("--expect", type=int, default=1, help="fail unless at least this many dashboards are visible")
    ap.add_argument("--timeout", type=float, default=180, help="seconds to wait for one dashboard's charts")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = ap.parse_args(argv)
    password = os.environ.get(args.password_env)
    if not password:
        print(f"screenshots: set the password in ${args.password_env}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    base = args.url.rstrip("/")
    problems: list[str] = []
    try:
        browser = Browser(args.chromium)
    except (RuntimeError, OSError) as exc:
        print(f"screenshots: {exc}", file=sys.stderr)
        return 1
    try:
        sign_in(browser, base, args.username, password)
        found = sorted(_api(browser, "/api/v1/dashboard/?q=(page_size:100)"), key=lambda d: d.get("slug") or "")
        if len(found) < args.expect:
            problems.append(f"{args.username} sees {len(found)} dashboards, expected at least {args.expect}")
        for dash in found:
            result, issues = check_dashboard(browser, base, dash, args.out, args.timeout, args.prefix)
            print(json.dumps(result), flush=True)
            problems += issues
    except (RuntimeError, TimeoutError, OSError) as exc:
        problems.append(str(exc))
    finally:
        browser.close()
    for p in problems:
        print(f"screenshots: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
