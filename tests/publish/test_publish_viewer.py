"""The Leaflet viewer in headless Chromium: zoom, clicks, URL state, no console errors.

One browser per module, driven over the DevTools protocol (`tests.helpers.browser.Browser`):
the page is opened from disk (``file://``), the strictest case (no fetch, tainted canvases).
Screenshots are written under the test's tmp folder, and also under ``$GEOPROC_SCREENSHOTS``
when that is set (how the README's screenshots were made).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from functools import partial
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import pytest
import rasterio
from pyproj import Transformer

from geoproc.publish.colormaps import DRY_COLOR, FLOOD_COLOR, PERMANENT_WATER_COLOR, STYLES
from geoproc.publish.viewer import LEAFLET_VERSION, opening_date, viewer_files, viewer_html
from tests.helpers.browser import Browser, require_chromium
from tests.helpers.published_stores import DATES, TILES, shared_published, water_of
from tests.helpers.servers import http_server
from tests.helpers.viewer_shots import console_lines, count_color, is_color, screenshot

READY = "document.getElementById('status').dataset.state === 'ready'"
VALUE_READY = "document.getElementById('value').dataset.state === 'ready'"
EARTH = 2 * math.pi * 6378137.0
WEST_LON = 11.97
"""A longitude inside the 32N tile only (its data ends ~0.002 deg east of 12 E)."""


@pytest.fixture(scope="module")
def published() -> Path:
    return shared_published()


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Browser:
    chromium = require_chromium()
    b = Browser(chromium, tmp_path_factory.mktemp("chromium"))
    yield b
    b.close()


def _open(browser: Browser, page: Path, hash_: str = "") -> None:
    browser.messages.clear()
    browser.goto("about:blank")
    browser.goto(page.as_uri() + (f"#{hash_}" if hash_ else ""))
    browser.wait_for(f"document.readyState === 'complete' && {READY}")


def _shot(browser: Browser, tmp: Path, name: str) -> np.ndarray:
    path = browser.screenshot(tmp / name)
    if os.environ.get("GEOPROC_SCREENSHOTS"):
        keep = Path(os.environ["GEOPROC_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, keep / name)
    with rasterio.open(path) as src:
        return src.read()[:3]


def test_one_shot_screenshot_opens_on_the_data_without_console_lines(published, tmp_path):
    """The plain ``chromium --screenshot`` path other tests (the pipeline's) rely on."""
    rgb, stderr = screenshot(
        require_chromium(), (published / "viewer" / "index.html").as_uri(), tmp_path
    )
    assert console_lines(stderr) == []
    assert count_color(rgb, FLOOD_COLOR) > 500
    assert count_color(rgb, PERMANENT_WATER_COLOR) > 200
    assert count_color(rgb, DRY_COLOR) > 5000


def _merc_y(lat: float) -> float:
    return 6378137.0 * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def _flood_band_rows(day: int) -> tuple[float, float]:
    """South and north latitude of the synthetic flood band on a date (`water_of`)."""
    return 47.47, 47.48 + 0.002 * day


@pytest.mark.parametrize("zoom", [10, 14])
def test_zoom_draws_the_flood_band_at_its_true_size(browser, published, tmp_path, zoom):
    """At z10 (published) and z14 (overzoomed from z12) the band is as tall as it is on Earth."""
    south, north = _flood_band_rows(1)
    lat = (south + north) / 2
    _open(
        browser,
        published / "viewer" / "index.html",
        f"layer=flood&date={DATES[1]}&z={zoom}&lat={lat}&lon={WEST_LON}&opacity=1",
    )
    assert browser.evaluate("geoprocViewer.map.getZoom()") == zoom
    rgb = _shot(browser, tmp_path, f"viewer-flood-z{zoom}.png")
    width = rgb.shape[2]
    flood = is_color(rgb, FLOOD_COLOR)
    centre_col = flood[:, width // 2 - 3]  # the hash's longitude
    rows = np.flatnonzero(centre_col)
    metres_per_px = EARTH / (256 * 2**zoom)
    expected = (_merc_y(north) - _merc_y(south)) / metres_per_px
    cog_px = 30.0 / math.cos(math.radians(lat)) / metres_per_px  # one COG pixel on screen
    assert rows.size > 0
    assert abs((rows.max() - rows.min() + 1) - expected) <= 2 + 1.5 * cog_px
    assert (np.diff(rows) == 1).all()  # one unbroken band, no seams between tiles
    # the band sits at its latitude: its middle is the screen's vertical centre (hash lat)
    height = browser.evaluate("document.getElementById('map').clientHeight")
    assert abs((rows.min() + rows.max()) / 2 - height / 2) <= 2 + cog_px
    assert is_color(rgb, PERMANENT_WATER_COLOR).sum() > (0 if zoom == 14 else 50)
    assert browser.errors() == []


def _sample_cog(path: Path, lon: float, lat: float):
    with rasterio.open(path) as src:
        x, y = Transformer.from_crs(4326, src.crs, always_xy=True).transform(lon, lat)
        return next(src.sample([(x, y)], masked=True))[0], src.nodata


@pytest.mark.parametrize(
    ("layer", "variable", "lat"),
    [("flood", "water", 47.4765), ("lst", "lst", 47.51), ("canopy", "canopy_class", 47.5)],
)
def test_a_click_shows_the_value_stored_in_the_cog(browser, published, layer, variable, lat):
    """Click the map centre: the value and every date of the series equal the COGs'."""
    _open(
        browser,
        published / "viewer" / "index.html",
        f"layer={layer}&z=13&lat={lat}&lon={WEST_LON}",
    )
    size = browser.evaluate("[innerWidth, innerHeight]")
    map_h = browser.evaluate("document.getElementById('map').clientHeight")
    browser.click(size[0] / 2, map_h / 2)
    browser.wait_for(VALUE_READY)
    shown = browser.evaluate("Object.assign({}, document.getElementById('value').dataset)")
    lon, plat = float(shown["lon"]), float(shown["lat"])
    # the sampled point is the centre of the z12 web pixel under the click (~26 m)
    assert abs(lon - WEST_LON) < 40 / 75000 and abs(plat - lat) < 40 / 111000
    tile = sorted(TILES)[0]
    dates = json.loads((published / "tiles" / layer / "layer.json").read_text())["dates"]
    series = json.loads(shown["series"])
    assert len(series) == len(dates)
    for date, value in zip(dates, series, strict=True):
        stored, _ = _sample_cog(
            published / "cog" / layer / tile / date / f"{variable}.tif", lon, plat
        )
        assert not np.ma.is_masked(stored)
        assert value == stored.item(), (date, value, stored)  # exact: same dtype, no rounding
    assert shown["date"] in dates
    assert float(shown["raw"]) == series[dates.index(shown["date"])]
    text = browser.evaluate("document.getElementById('value').textContent")
    if layer == "flood":
        expected = water_of(np.array(lon), np.array(plat), dates.index(shown["date"]))
        assert int(expected) == int(float(shown["raw"]))  # and it is the right class there
        assert ("flood" if int(expected) == 2 else "dry") in text
        assert browser.evaluate("document.querySelectorAll('#chart rect.cell').length") == 2
    if layer == "lst":
        assert text.endswith(" K")
        assert browser.evaluate("document.querySelectorAll('#chart circle.cell').length") == 2
    assert browser.errors() == []


def test_a_click_on_nodata_says_so(browser, published):
    """The cloud hole (store rows/cols 10..19 of the 32N tile) has no value, not class 0."""
    epsg, left, top = TILES[sorted(TILES)[0]]
    lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(
        left + 15 * 30.0, top - 15 * 30.0
    )
    _open(browser, published / "viewer" / "index.html", f"layer=flood&pt={lat},{lon}")
    browser.wait_for(VALUE_READY)
    shown = browser.evaluate("Object.assign({}, document.getElementById('value').dataset)")
    stored, _ = _sample_cog(
        published / "cog" / "flood" / sorted(TILES)[0] / DATES[0] / "water.tif",
        float(shown["lon"]),
        float(shown["lat"]),
    )
    assert np.ma.is_masked(stored)
    assert shown["raw"] == "nodata"
    assert json.loads(shown["series"]) == [None, None]
    assert "no data" in browser.evaluate("document.getElementById('value').textContent")


def test_the_page_works_over_http_too(browser, published):
    """Served by a plain web server: same tiles, same click values, nothing fails to load."""
    with http_server(partial(QuietHandler, directory=str(published))) as base:
        url = f"{base}/viewer/index.html"
        browser.messages.clear()
        browser.goto(f"{url}#layer=lst&pt=47.51,{WEST_LON}")
        browser.wait_for(f"document.readyState === 'complete' && {READY} && {VALUE_READY}")
        shown = browser.evaluate("document.getElementById('value').dataset.raw")
        assert browser.evaluate("document.querySelectorAll('.leaflet-tile-loaded').length") > 2
    lat, lon = (
        float(browser.evaluate(f"document.getElementById('value').dataset.{k}"))
        for k in ("lat", "lon")
    )
    date = browser.evaluate("document.getElementById('value').dataset.date")
    stored, _ = _sample_cog(
        published / "cog" / "lst" / sorted(TILES)[0] / date / "lst.tif", lon, lat
    )
    assert float(shown) == stored.item()
    assert browser.errors() == []


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


def _hash(browser: Browser) -> dict[str, str]:
    return dict(parse_qsl(browser.evaluate("location.hash").lstrip("#")))


def test_the_view_round_trips_through_the_url(browser, published, tmp_path):
    page = published / "viewer" / "index.html"
    wanted = {
        "layer": "lst",
        "date": DATES[0],
        "z": "13",
        "lat": "47.51000",
        "lon": "11.98000",
        "opacity": "0.4",
        "pt": "47.510000,11.980000",
    }
    _open(browser, page, "&".join(f"{k}={v}" for k, v in wanted.items()))
    browser.wait_for(VALUE_READY)
    state = browser.evaluate(
        "({layer: document.getElementById('layer').selectedOptions[0].textContent,"
        " date: document.getElementById('date-label').textContent,"
        " zoom: geoprocViewer.map.getZoom(),"
        " opacity: document.querySelector('.leaflet-tile-pane .leaflet-layer').style.opacity,"
        " slider: document.getElementById('opacity').value})"
    )
    assert state == {
        "layer": f"lst: {STYLES['lst'].title}",
        "date": DATES[0],
        "zoom": 13,
        "opacity": "0.4",
        "slider": "40",
    }
    got = _hash(browser)
    pt = [float(v) for v in got.pop("pt").split(",")]
    assert abs(pt[0] - 47.51) < 4e-4 and abs(pt[1] - 11.98) < 4e-4  # snapped to the pixel
    wanted.pop("pt")
    assert got == wanted

    # interact: next date, switch layer with the selector, zoom out; the hash follows
    browser.evaluate("document.getElementById('date-next').click()")
    browser.evaluate(
        "(() => { const s = document.getElementById('layer');"
        " s.value = String([...s.options].findIndex(o => o.textContent.startsWith('flood')));"
        " s.dispatchEvent(new Event('change')); })()"
    )
    browser.evaluate("void geoprocViewer.map.setZoom(11, {animate: false})")
    browser.wait_for(f"{READY} && location.hash.includes('z=11')")
    moved = _hash(browser)
    assert (moved["layer"], moved["date"], moved["z"], moved["opacity"]) == (
        "flood",
        DATES[1],
        "11",
        "0.4",
    )
    assert browser.evaluate("document.getElementById('permalink').getAttribute('href')") == (
        browser.evaluate("location.hash")
    )
    # a hash edited by hand (or a pasted link) is applied in place
    browser.evaluate(
        "location.hash = '#layer=canopy&date=2023&z=12&lat=47.5&lon=11.99&opacity=0.5'"
    )
    browser.wait_for(f"{READY} && location.hash.includes('layer=canopy')")
    assert browser.evaluate(
        "document.getElementById('layer').selectedOptions[0].textContent"
    ).startswith("canopy")
    assert browser.evaluate(
        "[geoprocViewer.map.getZoom(), document.getElementById('opacity').value]"
    ) == [12, "50"]
    browser.evaluate(f"location.hash = '{'#' + '&'.join(f'{k}={v}' for k, v in moved.items())}'")
    browser.wait_for(f"{READY} && location.hash.includes('layer=flood&date={moved['date']}')")
    # the same URL opened afresh shows the same view
    _open(browser, page, browser.evaluate("location.hash").lstrip("#"))
    browser.wait_for(VALUE_READY)
    assert _hash(browser) == moved
    assert browser.errors() == []


def test_the_page_opens_on_the_flood_peak_with_its_legend(browser, published):
    layer = json.loads((published / "tiles" / "flood" / "layer.json").read_text())
    _open(browser, published / "viewer" / "index.html")
    assert browser.evaluate("document.getElementById('date-label').textContent") == (
        opening_date(layer)
    )
    assert _hash(browser)["layer"] == "flood"
    legend = browser.evaluate("document.getElementById('legend').textContent")
    for name in ("dry", "permanent water", "flood", "no data"):
        assert name in legend
    assert browser.evaluate("document.querySelector('.leaflet-control-scale-line').textContent")
    assert browser.errors() == []


def test_lst_is_drawn_in_its_ramp(browser, published, tmp_path):
    _open(
        browser,
        published / "viewer" / "index.html",
        f"layer=lst&date={DATES[0]}&z=12&lat=47.5&lon=11.99&opacity=1",
    )
    rgb = _shot(browser, tmp_path, "viewer-lst-z12.png")
    assert is_color(rgb, FLOOD_COLOR).sum() == 0
    lut = STYLES["lst"].ramp_lut()
    # the synthetic LST spans ~285..296 K: ramp indexes ~112..147
    assert sum(is_color(rgb, lut[i]).sum() for i in range(100, 160, 3)) > 2000
    legend = browser.evaluate("document.getElementById('legend').textContent")
    assert "(K)" in legend and "250" in legend and "330" in legend
    assert browser.errors() == []


def test_a_missing_tile_is_an_error_the_tests_see(browser, published, tmp_path):
    """Negative control: the error channels the tests above rely on do fire."""
    copy = tmp_path / "copy"
    shutil.copytree(published / "tiles", copy / "tiles")
    shutil.copytree(published / "viewer", copy / "viewer")
    for png in (copy / "tiles" / "flood").rglob("*.png"):
        png.unlink()
    browser.messages.clear()
    browser.goto((copy / "viewer" / "index.html").as_uri() + "#layer=flood")
    browser.wait_for("document.title.startsWith('ERROR: tile failed to load')")
    assert browser.evaluate("document.getElementById('status').dataset.errors") != "0"
    assert any("ERR_FILE_NOT_FOUND" in m["text"] for m in browser.errors())


def test_opening_date_is_the_flood_peak_else_the_latest():
    classes = [{"value": 0, "name": "dry"}, {"value": 2, "name": "flood_water"}]
    layer = {
        "dates": ["2024-01-01", "2024-02-01", "2024-03-01"],
        "legend": {"type": "classes", "classes": classes},
        "class_counts": {
            "2024-01-01": {"0": 900, "2": 10},
            "2024-02-01": {"0": 100, "2": 700},
            "2024-03-01": {"0": 1000},
        },
    }
    assert opening_date(layer) == "2024-02-01"
    assert opening_date({**layer, "class_counts": {}}) == "2024-03-01"
    ramp = {"dates": ["2024-01-01", "2024-02-01"], "legend": {"type": "ramp"}}
    assert opening_date(ramp) == "2024-02-01"
    assert opening_date({"dates": []}) is None


def test_page_is_self_contained_and_ships_its_library():
    manifest = {
        "run_id": "x</script><b>",
        "bounds": [0, 0, 1, 1],
        "minzoom": 1,
        "maxzoom": 2,
        "layers": [],
    }
    html = viewer_html(manifest).decode()
    assert "</script><b>" not in html  # the manifest cannot close its script element
    assert "http://" not in html and "https://" not in html  # no CDN, no network
    files = viewer_files()
    assert f"Leaflet {LEAFLET_VERSION}" in files["vendor/leaflet/leaflet.js"][:200].decode()
    assert b"BSD 2-Clause License" in files["vendor/leaflet/LICENSE"]
    for ref in ('src="vendor/leaflet/leaflet.js"', 'href="vendor/leaflet/leaflet.css"'):
        assert ref in html
