"""A scheduled regional run with a later end date appends only the new dates (read from the reports)."""

from __future__ import annotations

import json

import pytest
import xarray as xr

from geoproc import pipeline
from geoproc.request import RunRequest

pytestmark = pytest.mark.integration

TILE = "32N_0188_1371"


@pytest.fixture(autouse=True)
def _trust_the_local_archive(monkeypatch):
    """The sample archive's items point at local files; its loopback catalog is ours."""
    monkeypatch.setenv("GEOPROC_ALLOW_LOCAL_ASSETS", "true")


def _request(url: str, out, *, start: str, end: str) -> RunRequest:
    return RunRequest.create(
        products="lst", aoi=TILE, start=start, end=end, catalog=url, out=str(out),
        options={"tile_size_px": 128},
    )  # fmt: skip


def test_a_later_end_date_appends_only_the_new_dates(stac_api_small, tmp_path):
    out = tmp_path / "out"
    first = pipeline.run_pipeline(
        _request(stac_api_small, out, start="2024-01-01", end="2024-06-30"), publish_outputs=False
    )
    second = pipeline.run_pipeline(
        _request(stac_api_small, out, start="2024-01-01", end="2024-12-31"), publish_outputs=False
    )
    # what the catalog holds for each half, asked independently of the runs
    tiles = pipeline.plan(_request(stac_api_small, out, start="2024-01-01", end="2024-06-30"))
    halves = [
        pipeline.search(_request(stac_api_small, out, start=s, end=e), tiles).tiles[TILE].steps
        for s, e in (("2024-01-01", "2024-06-30"), ("2024-07-01", "2024-12-31"))
    ]
    assert len(halves[0]) > 10 and len(halves[1]) > 10

    assert len(first["cubes"][TILE]["steps_written"]) == len(halves[0])
    cube = second["cubes"][TILE]
    assert cube["steps_skipped"] == len(halves[0])  # the first half is not touched again
    assert cube["steps_written"] == [f"{s.time}/{s.platform}" for s in halves[1]]
    assert [r["time"] for r in second["masked_fraction"][TILE]] == [str(s.time) for s in halves[1]]

    l30 = [sum(s.platform == "L30" for s in half) for half in halves]
    assert first["product_steps_computed"] == {f"lst/{TILE}": l30[0]}
    # LST dates are independent: the second run computes only the new L30 dates, and the
    # store holds every L30 date
    assert second["products"][f"lst/{TILE}"]["status"] == "appended"
    assert second["product_steps_computed"] == {f"lst/{TILE}": l30[1]}
    assert "appended" in second["product_update_policy"]["lst"]
    store = xr.open_zarr(second["products"][f"lst/{TILE}"]["store"], consolidated=True)
    assert store.sizes["time"] == l30[0] + l30[1]

    third = pipeline.run_pipeline(
        _request(stac_api_small, out, start="2024-01-01", end="2024-12-31"), publish_outputs=False
    )
    assert third["cubes"][TILE]["steps_written"] == []
    assert third["products"][f"lst/{TILE}"]["status"] == "skipped"
    assert third["product_steps_computed"] == {}
    saved = json.loads((out / "runs" / third["run_id"] / "report.json").read_text())
    assert saved["cubes"][TILE]["steps_skipped"] == len(halves[0]) + len(halves[1])
