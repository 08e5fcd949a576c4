"""Headless Chromium for the viewer tests: found on PATH, never installed by a test.

`.ci/run` installs it (`apt-get install -y chromium`) before `make test`. Elsewhere a
missing browser skips the browser tests with the command that installs one; under
`CI=true` a missing browser fails instead, so CI cannot pass without looking at the page.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
"""Headless, and no background connections (the test machines have no network to offer)."""
INSTALL_HINT = (
    "install a headless Chromium to run it: `sudo apt-get install -y chromium` (Debian/Ubuntu), "
    "`brew install --cask chromium` (macOS), or put chromium/google-chrome on PATH"
)


def find_chromium() -> str | None:
    """The first Chromium-family browser on PATH, or None."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The browser's path; skips (or, under CI=true, fails) when there is none."""
    found = find_chromium()
    if found:
        return found
    message = f"headless Chromium not found on PATH: {INSTALL_HINT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {message} (.ci/run installs it before `make test`)")
    pytest.skip(message)


class Browser:
    """One headless Chromium driven over the DevTools protocol (CDP) with websocket-client.

    Why CDP rather than ``--screenshot``/``--dump-dom`` runs: a test can click at a pixel,
    wait for the page to settle, read values from the DOM, zoom and take several screenshots
    from one browser start (~1 s), and it sees every console message and failed request the
    page causes (``Runtime``/``Log`` events), not only what the page chose to report.
    """

    def __init__(self, chromium: str, profile: Path, *, width: int = 1024, height: int = 768):
        import websocket  # websocket-client

        profile.mkdir(parents=True, exist_ok=True)
        port_file = profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)  # a reused profile keeps the last browser's port
        self.proc = subprocess.Popen(
            [
                chromium,
                *HEADLESS_FLAGS,
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.messages: list[dict] = []
        """Console messages, exceptions and log entries the page produced."""
        self._id = 0
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("headless Chromium did not open its DevTools port")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        deadline = time.monotonic() + 10
        while True:
            try:
                no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                with no_proxy.open(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                    pages = [t for t in json.load(r) if t["type"] == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("headless Chromium opened no page")
            time.sleep(0.05)
        try:
            self.ws = websocket.create_connection(
                pages[0]["webSocketDebuggerUrl"],
                timeout=30,
                suppress_origin=True,
                # our own socket: never through an http_proxy set in the environment
                socket=socket.create_connection(("127.0.0.1", port), timeout=30),
            )
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable")
        except BaseException:
            self.close()  # no browser left running when the connection fails
            raise

    def send(self, method: str, **params) -> dict:
        """Send one CDP command and return its result (events seen meanwhile are kept)."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def _event(self, msg: dict) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.messages.append({"source": "console", "level": params["type"], "text": text})
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            self.messages.append({"source": "exception", "level": "error", "text": text})
        elif method == "Log.entryAdded":
            entry = params["entry"]
            text = f"{entry.get('text')} {entry.get('url', '')}".strip()
            self.messages.append({"source": entry["source"], "level": entry["level"], "text": text})

    def errors(self) -> list[dict]:
        """Console errors and warnings, uncaught exceptions, failed loads so far."""
        return [m for m in self.messages if m["level"] in ("error", "warning")]

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression (promises are awaited)."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0):
        """Poll until the expression is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except RuntimeError:
                value = None  # the page is still loading
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {expression}")
            time.sleep(0.1)

    def click(self, x: float, y: float) -> None:
        """A left click at viewport pixel (x, y), as a user's mouse does it."""
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path: Path) -> Path:
        """The viewport as a PNG at ``path``."""
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
