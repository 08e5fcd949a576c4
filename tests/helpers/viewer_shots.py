"""One-shot headless screenshots of a viewer page and colour counts on them (no test functions).

Used by the viewer tests and by the pipeline test that looks at a real run's viewer: the plain
``chromium --screenshot`` path needs no DevTools connection, and its stderr carries the page's
console lines.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import rasterio

from tests.helpers.browser import HEADLESS_FLAGS


def run_chromium(chromium: str, url: str, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    """One-shot headless run (``--screenshot``/``--dump-dom``), no DevTools connection."""
    return subprocess.run(
        [
            chromium,
            *HEADLESS_FLAGS,
            f"--user-data-dir={tmp / 'profile'}",
            "--window-size=1024,768",
            "--virtual-time-budget=5000",
            "--run-all-compositor-stages-before-draw",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def screenshot(chromium: str, url: str, tmp: Path) -> tuple[np.ndarray, str]:
    """RGB of a one-shot screenshot (kept as ``tmp/shot.png``) and Chromium's stderr."""
    shot = tmp / "shot.png"
    result = run_chromium(chromium, url, tmp, f"--screenshot={shot}")
    assert shot.exists(), result.stderr[-2000:]
    with rasterio.open(shot) as src:
        rgb = src.read()[:3]
    return rgb, result.stderr


def is_color(rgb: np.ndarray, color: tuple[int, ...]) -> np.ndarray:
    """Pixels within 2 DN of `color` in every channel (anti-aliasing and PNG rounding)."""
    return (np.abs(rgb.astype(int) - np.array(color[:3])[:, None, None]) <= 2).all(0)


def count_color(rgb: np.ndarray, color: tuple[int, ...]) -> int:
    """How many pixels show `color`."""
    return int(is_color(rgb, color).sum())


def console_lines(stderr: str) -> list[str]:
    """The page's console messages in Chromium's stderr log."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]
