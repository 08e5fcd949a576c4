"""Headless Chromium for the viewer tests: found on PATH, never installed by a test.

`.ci/run` installs it (`apt-get install -y chromium`) before `make test`. Elsewhere a
missing browser skips the browser tests with the command that installs one; under
`CI=true` a missing browser fails instead, so CI cannot pass without looking at the page.
"""

from __future__ import annotations

import os
import shutil

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
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
