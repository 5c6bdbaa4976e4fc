"""Headless Chromium driven over the DevTools protocol (websockets): one page, navigate, evaluate, type, screenshot.

The project's one browser driver: ``scripts/marquez_screenshot.py`` uses it as is, ``dashboards/screenshots.py``
(and through it lab/e2e_browser.py) subclasses it to follow the chart-data requests (``on_event``). Chromium:
Debian's ``/usr/bin/chromium`` with the flags the project uses for headless runs (``FLAGS``, read when a browser
starts); a new empty profile per browser, removed on close.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
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
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
]
WIDTH = 1600
WINDOW_HEIGHT = 1200
# True once a navigation has replaced the document Browser.mark_document marked.
NEW_DOCUMENT = "!window.__cgtLeftDocument"


class Browser:
    """A headless Chromium and one page, driven over the DevTools protocol."""

    # More DevTools domains to enable at start (a subclass that follows network events adds "Network.enable").
    domains: tuple[str, ...] = ()

    def __init__(self, chromium: str = "/usr/bin/chromium", env: dict[str, str] | None = None):
        """`env`: the browser's environment (e.g. a HOME whose NSS database trusts a site CA); default: ours."""
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self.stack = ExitStack()
        self.proc = subprocess.Popen(
            [
                chromium,
                *FLAGS,
                f"--window-size={WIDTH},{WINDOW_HEIGHT}",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60  # a loaded machine: Chromium's first start takes seconds
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError(f"{chromium} did not start (no DevTools port)")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.load(resp) if t["type"] == "page"]
        self.ws = self.stack.enter_context(connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=10))
        self.next_id = 0
        for method in ("Page.enable", "Runtime.enable", *self.domains):
            self.call(method)

    def on_event(self, msg: dict) -> None:
        """A DevTools event that arrived while waiting for a reply; ignored here, subclasses follow some."""

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=120))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error'].get('message')}")
                return msg.get("result", {})
            self.on_event(msg)

    def evaluate(self, expression: str, await_promise: bool = False):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=await_promise)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def mark_document(self) -> None:
        """Mark the page's current document, so ``NEW_DOCUMENT`` tells when a navigation has replaced it."""
        self.evaluate("window.__cgtLeftDocument = true")

    def goto(self, url: str, timeout: float = 60) -> None:
        """Navigate and wait until the new document (after any redirects) has loaded; the old one, still
        `complete` while the navigation is under way, does not count."""
        self.mark_document()
        self.call("Page.navigate", url=url)
        self.wait_for(f"{NEW_DOCUMENT} && document.readyState === 'complete'", timeout, f"{url} did not load")

    def wait_for(self, expression: str, timeout: float, message: str) -> None:
        """Poll ``expression`` until true. A page script error while a navigation replaces the document (its context
        is gone) counts as not yet."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.evaluate(expression):
                    return
            except RuntimeError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(message)
            time.sleep(0.25)

    def type_into(self, selector: str, text: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)

    def fit_height(self, height: int) -> None:
        """Make the viewport ``height`` tall (e.g. a whole dashboard, so every chart is in view)."""
        self.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=height, deviceScaleFactor=1, mobile=False)

    def capture(self, path: Path) -> None:
        """Save the viewport as it is now (after ``fit_height``) as a PNG."""
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.write_bytes(base64.b64decode(data))

    def screenshot(self, path: Path) -> None:
        """Save the whole page: the viewport made as tall as the page for one capture, then put back."""
        height = self.evaluate("Math.ceil(document.documentElement.scrollHeight)") or WINDOW_HEIGHT
        self.fit_height(int(height))
        time.sleep(0.5)  # one layout pass at the new size
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        self.call("Emulation.clearDeviceMetricsOverride")

    def close(self) -> None:
        self.stack.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)
