"""Screenshots of the dashboards in headless Chromium, failing on any chart that shows an error.

Run with the Superset venv's Python (it has selenium; the browser and driver are Debian's chromium and
chromium-driver)::

    DASHBOARDS_PASSWORD=... .lakehouse/superset/venv/bin/python dashboards/screenshots.py \\
        --url http://127.0.0.1:8088 --username admin --out docs/screenshots --prefix local-

It signs in through Superset's login form, opens every dashboard of ``dashboards/assets/dashboards/`` by its
slug, waits until every chart has rendered (no loading spinner left), fails if a chart shows an error panel or
no data, and saves ``<out>/<prefix><slug>.png``. Exit 0 when every dashboard rendered cleanly; otherwise one
line per problem on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

ASSETS = Path(__file__).resolve().parent / "assets"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
# In the page: the chart holders, the ones still loading, and the ones showing an error or "No results".
PROBE_JS = """
const holders = document.querySelectorAll('.dashboard-component-chart-holder');
const loading = document.querySelectorAll('.dashboard-component-chart-holder .loading');
const problems = [];
holders.forEach(h => {
  const title = (h.querySelector('.header-title, [data-test="editable-title"]') || {}).innerText || '?';
  if (h.querySelector('[role="alert"], .alert-danger, [data-test="error-message"], .ant-alert-error'))
    problems.push(title.trim() + ': error panel');
  else if (/No results were returned/i.test(h.innerText))
    problems.push(title.trim() + ': no data');
});
return [holders.length, loading.length, problems];
"""


def dashboards(assets: Path = ASSETS) -> list[dict]:
    out = []
    for path in sorted((assets / "dashboards").glob("*.yaml")):
        d = yaml.safe_load(path.read_text())
        charts = [n for n in d["position"].values() if isinstance(n, dict) and n.get("type") == "CHART"]
        out.append({"slug": d["slug"], "title": d["dashboard_title"], "charts": len(charts)})
    return out


def browser(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='dash-chromium-')}")
    opts.add_argument(f"--window-size={width},{height}")
    return webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))


def sign_in(driver, url: str, username: str, password: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{url}/login/")
    wait = WebDriverWait(driver, 60)
    user = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "input[name='username'], #username")))
    user.send_keys(username)
    driver.find_element(By.CSS_SELECTOR, "input[name='password'], #password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type='submit'], input[type='submit']").click()
    deadline = time.monotonic() + 60
    while "/login" in driver.current_url:
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: sign-in as {username} failed (still on the login page)")
        time.sleep(0.5)


def capture(driver, url: str, dash: dict, out: Path, timeout: float) -> list[str]:
    driver.get(f"{url}/superset/dashboard/{dash['slug']}/?standalone=1")
    deadline = time.monotonic() + timeout
    holders, loading, problems = 0, 1, []
    while time.monotonic() < deadline:
        holders, loading, problems = driver.execute_script(PROBE_JS)
        if holders >= dash["charts"] and loading == 0:
            break
        time.sleep(1)
    else:
        return [f"{dash['title']}: {holders}/{dash['charts']} charts shown, {loading} still loading after {timeout}s"]
    time.sleep(2)  # ECharts animations settle
    holders, loading, problems = driver.execute_script(PROBE_JS)
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(driver.get_window_size()["width"], max(height + 40, 900))
    time.sleep(1)
    driver.save_screenshot(str(out))
    return [f"{dash['title']}: {p}" for p in problems]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--username", required=True)
    ap.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    ap.add_argument("--prefix", default="local-")
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--width", type=int, default=1600)
    args = ap.parse_args(argv)
    password = os.environ.get("DASHBOARDS_PASSWORD")
    if not password:
        print("screenshots: DASHBOARDS_PASSWORD is not set", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    driver = browser(args.width, 1000)
    problems: list[str] = []
    try:
        sign_in(driver, args.url.rstrip("/"), args.username, password)
        for dash in dashboards():
            path = args.out / f"{args.prefix}{dash['slug']}.png"
            found = capture(driver, args.url.rstrip("/"), dash, path, args.timeout)
            problems += found
            print(f"{path}: {'problems' if found else 'ok'}", flush=True)
    finally:
        driver.quit()
    for p in problems:
        print(f"screenshots: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
