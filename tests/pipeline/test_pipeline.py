"""One whole run on the small sample archive through the live STAC API, scored against truth.

The run happens once per session (`small_run`); tests read its stores. Thresholds are set
below the figures measured on the sample archive so a regression fails here.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr

from geoproc.evaluate import evaluate
from geoproc.pipeline import run_pipeline

pytestmark = pytest.mark.integration


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "runs" not in p.parts
    }


def test_report_and_layout(small_run):
    out, report = small_run
    assert set(report["cubes"]) == {"32N_0188_1371", "32N_0189_1371", "33N_0071_1371"}
    for product in ("flood", "lst", "canopy"):
        stores = sorted((out / "products" / product).glob("*.zarr"))
        assert [s.stem for s in stores] == sorted(report["cubes"])
    assert (
        json.loads((out / "runs" / report["run_id"] / "report.json").read_text())["run_id"]
        == report["run_id"]
    )
    assert (out / "stac" / "catalog.json").is_file()


def test_product_stores_open_without_geoproc(small_run):
    out, _ = small_run
    ds = xr.open_zarr(out / "products" / "lst" / "33N_0071_1371.zarr")
    assert ds.rio.crs.to_epsg() == 32633
    assert ds["lst"].attrs["units"] == "K" and ds["lst"].attrs["grid_mapping"] == "spatial_ref"
    lst = ds["lst"].values
    finite = lst[np.isfinite(lst)]
    assert 240 < np.percentile(finite, 1) and np.percentile(finite, 99) < 335
    raw = xr.open_zarr(out / "products" / "flood" / "32N_0188_1371.zarr", mask_and_scale=False)
    classes = set(np.unique(raw["water"].values).tolist())
    assert {0, 1, 2} <= classes <= {0, 1, 2, 255}
    flood = xr.open_zarr(out / "products" / "flood" / "32N_0188_1371.zarr")
    assert np.isnan(flood["water"].values).sum() == (raw["water"].values == 255).sum()
    assert flood.attrs["product"] == "flood" and "algorithm_version" in flood.attrs


def test_scores_against_truth(small_run, sample_archive_small):
    out, _ = small_run
    board = evaluate(str(out), sample_archive_small)
    assert board["lst"]["overall"]["rmse"] < 0.8
    assert abs(board["lst"]["overall"]["bias"]) < 0.3
    assert board["flood"]["overall"]["water"]["iou"] > 0.75
    held_out = board["canopy"].get("held_out", board["canopy"]["all"])
    assert min(held_out["per_class"][c]["f1"] for c in ("no_tree", "broadleaf", "conifer")) > 0.9


def test_rerun_changes_no_byte(small_run, sample_archive_small, stac_api_small, run_request):
    out, report = small_run
    before = _digest(out)
    again = run_pipeline(run_request(sample_archive_small, stac_api_small, out))
    assert all(r["status"] == "skipped" for r in again["products"].values())
    assert all(not c["steps_written"] for c in again["cubes"].values())
    assert _digest(out) == before


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["run", "flood", "--aoi", "200,0,201,1"], "--aoi"),
        (["run", "flood", "--aoi", "12,47,11,48"], "west < east"),
        (["run", "flod", "--aoi", "11.9,47.4,12.1,47.6"], "flood, lst, canopy"),
        (["run", "flood", "--aoi", "11.9,47.4,12.1,47.6", "--start", "2024-02-30"], "--start"),
        (
            ["run", "flood", "--aoi", "11.9,47.4,12.1,47.6", "--collections", "HLSL31"],
            "--collections",
        ),
        (["run", "flood", "--aoi", "11.9,47.4,12.1,47.6", "--out", "gs://x/y"], "s3://"),
        (["run", "flood", "--aoi", "11.9,47.4,12.1,47.6", "--tile-size", "0"], "--tile-size"),
    ],
)
def test_cli_bad_input_exit_2_nothing_written(tmp_path, argv, needle):
    out = tmp_path / "out"
    base = {
        "--catalog": "http://127.0.0.1:9",
        "--start": "2024-01-01",
        "--end": "2024-12-31",
        "--out": str(out),
    }
    full = list(argv)
    for k, v in base.items():
        if k not in full:
            full += [k, v]
    proc = subprocess.run(
        [sys.executable, "-m", "geoproc", *full], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_cli_unreachable_catalog_exit_1(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "geoproc", "run", "flood", "--catalog", "http://127.0.0.1:9", "--aoi",
         "11.9,47.4,12.1,47.6", "--start", "2024-01-01", "--end", "2024-01-31", "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert (
        proc.returncode == 1 and "does not answer" in proc.stderr and "Traceback" not in proc.stderr
    )
    assert not out.exists()


def test_viewer_of_the_real_run_shows_the_flood(small_run, tmp_path):
    """Screenshot of the run's viewer on a flood date; GEOPROC_SAVE_SCREENSHOT=PATH keeps it (README)."""
    import os
    import shutil

    from geoproc.publish.colormaps import DRY_COLOR, FLOOD_COLOR, PERMANENT_WATER_COLOR
    from tests.helpers.browser import require_chromium
    from tests.helpers.viewer_shots import console_lines, count_color, screenshot

    browser = require_chromium()
    out, _ = small_run
    counts: dict = {}
    for store in (out / "products" / "flood").glob("*.zarr"):
        raw = xr.open_zarr(store, mask_and_scale=False)
        for t, n in zip(
            raw["time"].values, (raw["water"] == 2).sum(("y", "x")).values, strict=True
        ):
            counts[t] = counts.get(t, 0) + int(n)
    best = max(counts, key=counts.get)
    label = np.datetime_as_string(best, unit="s").replace(":", "")
    assert (out / "tiles" / "flood" / label).is_dir(), f"no tiles published for {label}"
    page = out / "viewer" / "index.html"
    rgb, stderr = screenshot(browser, f"{page.as_uri()}#layer=flood&date={label}", tmp_path)
    assert console_lines(stderr) == []
    assert count_color(rgb, FLOOD_COLOR) > 300
    assert count_color(rgb, PERMANENT_WATER_COLOR) > 100
    assert count_color(rgb, DRY_COLOR) > 5000
    if os.environ.get("GEOPROC_SAVE_SCREENSHOT"):
        shutil.copy(tmp_path / "shot.png", os.environ["GEOPROC_SAVE_SCREENSHOT"])


def test_published_stac_is_valid(small_run):
    from geoproc.stac_schemas import validate_stac

    out, _ = small_run
    catalog = json.loads((out / "stac" / "catalog.json").read_text())
    validate_stac(catalog)
    collections = sorted((out / "stac").glob("*/collection.json"))
    # one collection per product and one for the cubes (one item per tile, its Zarr store once)
    assert [c.parent.name for c in collections] == ["canopy", "cubes", "flood", "lst"]
    for collection in collections:
        validate_stac(json.loads(collection.read_text()))
        items = sorted(collection.parent.glob("*/*.json"))
        assert items
        for path in items[:: max(1, len(items) // 10)]:
            item = json.loads(path.read_text())
            validate_stac(item)
            for asset in item["assets"].values():
                if asset["href"].endswith(".tif"):
                    assert (path.parent / asset["href"]).resolve().is_file()
                if asset["href"].endswith(".zarr"):
                    assert (path.parent / asset["href"]).resolve().joinpath(".zgroup").is_file()
