"""The run report: numbers from the search and the cube, relative links, escaped HTML."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from geoproc import run_report
from geoproc.catalog.search import SearchResult, TileSearch, TimeStep
from geoproc.run_report import render_html
from geoproc.storage import parse_url

HOSTILE_ID = '<script>alert("x")</script>&S30'
HOSTILE_ERROR = "GDAL said: <b>bad</b> & \"worse\" at 'offset'"


def _item(item_id: str, collection: str) -> dict:
    return {"id": item_id, "collection": collection}


def _search() -> SearchResult:
    t = np.datetime64("2024-05-01T10:00:00", "s")
    steps_a = [
        TimeStep(
            t, "S30", "HLSS30_2.0", (_item("s30-a", "HLSS30_2.0"), _item(HOSTILE_ID, "HLSS30_2.0"))
        ),
        TimeStep(t + 3600, "S1", "sentinel-1-rtc", (_item("s1-a", "sentinel-1-rtc"),)),
    ]
    # the same S30 granule also covers the second tile: used once per collection, not twice
    steps_b = [TimeStep(t, "S30", "HLSS30_2.0", (_item("s30-a", "HLSS30_2.0"),))]
    tiles = {
        "32N_0001_0001": TileSearch(tile=None, steps=steps_a, dropped=[]),
        "32N_0002_0001": TileSearch(
            tile=None,
            steps=steps_b,
            dropped=[{"id": "l30-cloudy", "collection": "HLSL30_2.0", "reason": "cloud_cover"}],
        ),
    }
    return SearchResult(
        tiles=tiles,
        found=7,
        dropped=[
            {
                "id": "s30-a",
                "collection": "HLSS30_2.0",
                "reason": "duplicate",
                "tiles": ["32N_0002_0001", "32N_0001_0001"],
            },
            {"id": "far", "collection": "HLSS30_2.0", "reason": "outside_tile", "tiles": []},
            {"id": "far", "collection": "HLSS30_2.0", "reason": "outside_tile", "tiles": []},
        ],
        found_per_collection={"HLSS30_2.0": 5, "HLSL30_2.0": 1, "sentinel-1-rtc": 1},
    )


def test_inputs_count_used_items_per_collection_and_drops_with_reasons():
    inputs = run_report.inputs_summary(_search())
    assert inputs["found"] == 7
    assert inputs["used_per_collection"] == {"HLSS30_2.0": 2, "sentinel-1-rtc": 1}
    assert inputs["dropped_per_reason"] == {"cloud_cover": 1, "duplicate": 1, "outside_tile": 1}
    assert inputs["found_per_collection"] == {"HLSL30_2.0": 1, "HLSS30_2.0": 5, "sentinel-1-rtc": 1}
    assert inputs["dropped_per_collection"] == {
        "HLSL30_2.0": {"cloud_cover": 1},
        "HLSS30_2.0": {"duplicate": 1, "outside_tile": 1},
    }
    cloudy = [d for d in inputs["dropped"] if d["reason"] == "cloud_cover"]
    assert cloudy == [
        {
            "id": "l30-cloudy",
            "collection": "HLSL30_2.0",
            "reason": "cloud_cover",
            "tiles": ["32N_0002_0001"],
        }
    ]
    # the tile column is filled from the footprint the search recorded, sorted
    duplicate = [d for d in inputs["dropped"] if d["reason"] == "duplicate"]
    assert duplicate[0]["tiles"] == ["32N_0001_0001", "32N_0002_0001"]
    assert inputs["dropped_groups"] == [
        {
            "collection": "HLSL30_2.0",
            "reason": "cloud_cover",
            "count": 1,
            "tiles": {"32N_0002_0001": 1},
        },
        {
            "collection": "HLSS30_2.0",
            "reason": "duplicate",
            "count": 1,
            "tiles": {"32N_0001_0001": 1, "32N_0002_0001": 1},
        },
        {
            "collection": "HLSS30_2.0",
            "reason": "outside_tile",
            "count": 1,
            "tiles": {run_report.OUTSIDE_TILES: 1},
        },
    ]
    merged = run_report.merge_inputs([inputs, inputs])
    assert merged["found"] == 14
    assert merged["used_per_collection"] == {"HLSS30_2.0": 4, "sentinel-1-rtc": 2}
    assert merged["dropped_per_reason"] == inputs["dropped_per_reason"]  # same drops, once
    assert merged["found_per_collection"] == {
        "HLSL30_2.0": 2,
        "HLSS30_2.0": 10,
        "sentinel-1-rtc": 2,
    }
    assert merged["dropped_groups"] == inputs["dropped_groups"]


def _write_cube(root, tile: str, red: np.ndarray, vv: np.ndarray, complete, platforms) -> None:
    import xarray as xr

    times = np.array(
        ["2024-05-01T10:00:00", "2024-05-02T05:00:00", "2024-05-03T10:00:00"], "M8[ns]"
    )
    ds = xr.Dataset(
        {
            "red": (("time", "y", "x"), red),
            "vv": (("time", "y", "x"), vv),
            "time_complete": ("time", np.array(complete)),
        },
        coords={"time": times, "platform": ("time", np.array(platforms))},
    )
    ds.to_zarr(root / "cubes" / f"{tile}.zarr", mode="w", consolidated=True, zarr_format=3)


def test_masked_fraction_counts_nan_pixels_of_the_reference_band_per_complete_step(tmp_path):
    red = np.ones((3, 4, 5), np.float32)
    vv = np.ones((3, 4, 5), np.float32)
    red[0, :1, :] = np.nan  # 5 of 20 pixels masked on the optical step
    vv[0] = np.nan  # ignored: the optical step is judged on red
    vv[1, :2, :] = np.nan  # 10 of 20 on the SAR step
    red[1] = np.nan  # ignored: the SAR step is judged on vv
    red[2, :, :] = np.nan  # incomplete step: not reported at all
    _write_cube(tmp_path, "T", red, vv, [True, True, False], ["S30", "S1", "L30"])
    rows = run_report.masked_fractions(str(tmp_path), "T")
    assert [(r["time"], r["platform"], r["band"], r["masked_fraction"]) for r in rows] == [
        ("2024-05-01T10:00:00", "S30", "red", 0.25),
        ("2024-05-02T05:00:00", "S1", "vv", 0.5),
    ]
    only = run_report.masked_fractions(str(tmp_path), "T", steps=["2024-05-02T05:00:00/S1"])
    assert [r["masked_fraction"] for r in only] == [0.5]
    assert run_report.masked_fractions(str(tmp_path), "missing-tile") == []


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [v for k, v in attrs if k in ("href", "src")]

    def handle_data(self, data):
        self.text.append(data)


def _report() -> dict:
    return {
        "run_id": "20241231-abc",
        "status": "partial",
        "software_version": "0.1.0",
        "request": {"products": ["flood"], "aoi": "32N_0001_0001"},
        "inputs": run_report.inputs_summary(_search()),
        "timings_s": {"search": 1.25, "cube": 10.5, "product:flood": 3.0, "publish": 2.0},
        "cubes": {
            "32N_0001_0001": {
                "steps_written": ["2024-05-01T10:00:00/S30"],
                "steps_skipped": 4,
                "steps_refused": [],
                "asset_errors": [{"item": HOSTILE_ID, "asset": "B04", "error": HOSTILE_ERROR}],
            }
        },
        "masked_fraction": {
            "32N_0001_0001": [
                {
                    "time": "2024-05-01T10:00:00",
                    "platform": "S30",
                    "band": "red",
                    "masked_fraction": 0.25,
                }
            ]
        },
        "units": {"total": 2, "done": 1, "skipped": 0, "failed": 1, "blocked": 0},
        "unit_results": {
            "32N_0001_0001": [
                {
                    "unit": "32N_0001_0001:2024-01-01:2024-03-31",
                    "status": "done",
                    "steps_written": 3,
                },
                {
                    "unit": "32N_0001_0001:2024-04-01:2024-06-30",
                    "status": "failed",
                    "reason": HOSTILE_ERROR,
                },
            ]
        },
        "products": {"flood/32N_0001_0001": {"status": "written", "steps": 5, "seconds": 3.0}},
        "links": run_report.links(published=True),
    }


def test_html_escapes_outside_text_and_links_relatively(tmp_path):
    urls = run_report.write_run_report(parse_url(str(tmp_path)), "20241231-abc", _report())
    page = (tmp_path / "runs" / "20241231-abc" / "report.html").read_text()
    assert urls["html"].endswith("runs/20241231-abc/report.html")
    assert json.loads((tmp_path / "runs" / "20241231-abc" / "report.json").read_text()) == _report()

    parsed = _Collect()
    parsed.feed(page)
    assert "script" not in parsed.tags and "b" not in parsed.tags  # nothing injected
    assert HOSTILE_ID in "".join(parsed.text)  # shown to the reader as text
    assert HOSTILE_ERROR in "".join(parsed.text)
    # self-contained: only the two relative links, no network assets
    assert sorted(parsed.links) == ["../../stac/catalog.json", "../../viewer/index.html"]
    assert not re.search(r"https?://", page)
    # the viewer and catalog resolve from runs/{run_id}/ to the output root
    resolved = (tmp_path / "runs" / "20241231-abc" / "../../viewer/index.html").resolve()
    assert resolved == (tmp_path / "viewer" / "index.html").resolve()
    text = " ".join(" ".join(parsed.text).split())
    for expected in (
        "10.50",
        "0.250",
        "HLSS30_2.0 5 2 2 0 1 1",  # found, used, dropped, then per reason (cloud, dup, outside)
        "HLSL30_2.0 1 0 1 1 0 0",
        "HLSL30_2.0 cloud_cover 1 32N_0002_0001 (1)",
        "partial",
        "failed 1",
    ):
        assert expected in text, expected


def test_report_without_publish_has_no_links():
    page = run_report.render_html({**_report(), "links": run_report.links(published=False)})
    parsed = _Collect()
    parsed.feed(page)
    assert parsed.links == []


@pytest.mark.integration
def test_the_real_run_report_adds_up(small_run):
    out, report = small_run
    folder = out / "runs" / report["run_id"]
    # other tests rerun the same request (same run id) and rewrite these files: read
    # their shape from disk, the numbers of the first run from its returned report
    assert json.loads((folder / "report.json").read_text())["run_id"] == report["run_id"]
    assert (folder / "report.html").read_text().startswith("<!DOCTYPE html>")
    used = report["inputs"]["used_per_collection"]
    dropped = sum(report["inputs"]["dropped_per_reason"].values())
    assert 0 < sum(used.values()) and sum(used.values()) + dropped <= report["inputs"]["found"]
    # every drop the sample archive has (cloudy scenes) names the tiles it covered
    drops = report["inputs"]["dropped"]
    assert drops and all(d["tiles"] for d in drops if d["reason"] == "cloud_cover")
    assert {d["tiles"][0] for d in drops} <= set(report["cubes"])
    assert sum(g["count"] for g in report["inputs"]["dropped_groups"]) == len(drops)
    assert sum(report["inputs"]["found_per_collection"].values()) == report["inputs"]["found"]
    assert set(report["tiles"]) == set(report["cubes"])
    for tile, cube in report["cubes"].items():
        rows = report["masked_fraction"][tile]
        assert [f"{r['time']}/{r['platform']}" for r in rows] == cube["steps_written"]
        assert all(0.0 <= r["masked_fraction"] <= 1.0 for r in rows)
        assert any(r["masked_fraction"] > 0.05 for r in rows)  # the archive has clouds
    assert render_html(report).count("<h3>") >= len(report["cubes"])
    assert set(report["timings_s"]) == {"search", "cube", "publish"} | {
        f"product:{p}" for p in report["request"]["products"]
    }
    assert report["links"] == {
        "viewer": "../../viewer/index.html",
        "stac_catalog": "../../stac/catalog.json",
    }
    assert (folder / report["links"]["viewer"]).resolve().is_file()
    assert (folder / report["links"]["stac_catalog"]).resolve().is_file()
