"""The offline viewer in headless Chromium: no console errors, the layers are on screen."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geoproc.publish.colormaps import DRY_COLOR, FLOOD_COLOR, PERMANENT_WATER_COLOR, STYLES
from geoproc.publish.viewer import viewer_html
from tests.helpers.browser import require_chromium
from tests.helpers.published_stores import DATES, shared_published


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


@pytest.fixture(scope="module")
def published() -> Path:
    return shared_published()


def _run(chromium: str, url: str, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
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


def _screenshot(chromium: str, url: str, tmp: Path) -> tuple[np.ndarray, str]:
    shot = tmp / "shot.png"
    result = _run(chromium, url, tmp, f"--screenshot={shot}")
    assert shot.exists(), result.stderr[-2000:]
    with rasterio.open(shot) as src:
        rgb = src.read()[:3]
    return rgb, result.stderr


def _count(rgb: np.ndarray, color: tuple[int, ...]) -> int:
    return int((np.abs(rgb.astype(int) - np.array(color[:3])[:, None, None]) <= 2).all(0).sum())


def _console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_viewer_shows_flood_classes_without_console_errors(chromium, published, tmp_path):
    page = published / "viewer" / "index.html"
    url = f"{page.as_uri()}#layer=flood&date={DATES[1]}"
    rgb, stderr = _screenshot(chromium, url, tmp_path)
    assert _console_lines(stderr) == []
    assert _count(rgb, FLOOD_COLOR) > 500
    assert _count(rgb, PERMANENT_WATER_COLOR) > 200
    assert _count(rgb, DRY_COLOR) > 5000

    dom = _run(chromium, url, tmp_path / "dom", "--dump-dom")
    assert "<title>geoproc viewer: ready</title>" in dom.stdout
    assert 'data-errors="0"' in dom.stdout
    # layer switch, date selector and legend are in the page
    assert re.search(r'<select id="layer">.*flood.*lst.*canopy', dom.stdout, re.S)
    assert f'<option value="{DATES[0]}">' in dom.stdout
    assert "permanent water" in dom.stdout and "no data" in dom.stdout


def test_layer_switch_shows_lst_ramp_instead(chromium, published, tmp_path):
    page = published / "viewer" / f"run-{'run-shared'}.html"
    rgb, stderr = _screenshot(chromium, f"{page.as_uri()}#layer=lst&date={DATES[0]}", tmp_path)
    assert _console_lines(stderr) == []
    assert _count(rgb, FLOOD_COLOR) == 0
    lut = STYLES["lst"].ramp_lut()
    # the synthetic LST spans ~285..296 K: ramp indexes ~112..147
    ramp_pixels = sum(_count(rgb, lut[i]) for i in range(100, 160, 3))
    assert ramp_pixels > 2000


def test_viewer_reports_a_missing_tile_in_the_page(chromium, published, tmp_path):
    """Negative control: the error channel the tests above rely on does fire."""
    copy = tmp_path / "copy"
    shutil.copytree(published / "tiles", copy / "tiles")
    shutil.copytree(published / "viewer", copy / "viewer")
    for png in (copy / "tiles" / "flood").rglob("*.png"):
        png.unlink()
    url = f"{(copy / 'viewer' / 'index.html').as_uri()}#layer=flood"
    dom = _run(chromium, url, tmp_path / "dom", "--dump-dom")
    assert "<title>ERROR: tile failed to load" in dom.stdout


def test_page_is_self_contained():
    manifest = {
        "run_id": "x</script><b>",
        "bounds": [0, 0, 1, 1],
        "minzoom": 1,
        "maxzoom": 2,
        "layers": [],
    }
    html = viewer_html(manifest).decode()
    assert "</script><b>" not in html  # the manifest cannot close its script element
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "http://" not in html and "https://" not in html
