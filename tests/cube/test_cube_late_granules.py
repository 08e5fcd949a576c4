"""Late and reprocessed granules: a rerun rewrites a complete date whose items changed, and
inserts a date older than the store's last one (#15.3)."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from geoproc.cube.store import build_cubes
from tests.helpers.cube_items import TILE, make_item

SHAPE = (80, 80)


def _item(root, item_id, day, red, **props):
    return make_item(root, item_id, datetime=f"2024-06-{day:02d}T10:20:30Z",
                     bands={"B04": np.full(SHAPE, red, np.int16)},
                     fmask=np.zeros(SHAPE, np.uint8), properties=props)  # fmt: skip


def _build(root, out, start="2024-06-01", end="2024-06-30"):
    rec = build_cubes(str(root / "items"), collections=["HLSL30_2.0"], aoi=TILE.id, start=start,
                      end=end, out=str(out), tile_size_px=TILE.tile_size_px)  # fmt: skip
    return rec["tiles"][TILE.id]


def _cube(out):
    ds = xr.open_zarr(out / "cubes" / f"{TILE.id}.zarr", consolidated=False).load()
    days = [int(str(t)[8:10]) for t in ds.time.values]
    return ds, days


def test_a_reprocessed_item_rewrites_its_complete_date_only(tmp_path):
    out = tmp_path / "out"
    _item(tmp_path, "a", 5, 1111, updated="2024-06-06T00:00:00Z")
    _item(tmp_path, "b", 9, 3333, updated="2024-06-10T00:00:00Z")
    _build(tmp_path, out)
    again = _build(tmp_path, out)
    assert again["steps_written"] == []  # nothing changed: nothing rewritten
    _item(tmp_path, "a", 5, 2222, updated="2024-08-01T00:00:00Z")  # reprocessed, same id
    rec = _build(tmp_path, out)
    assert [w[:10] for w in rec["steps_written"]] == ["2024-06-05"]
    ds, days = _cube(out)
    assert days == [5, 9] and ds.time_complete.values.all()
    assert np.allclose(ds.red.values[0], 0.2222) and np.allclose(ds.red.values[1], 0.3333)
    versions = ds.attrs["geoproc:source_versions"]
    assert versions[0] == ["2024-08-01T00:00:00+00:00|"]


def test_a_late_granule_with_a_new_id_joins_its_complete_date(tmp_path):
    out = tmp_path / "out"
    _item(tmp_path, "a", 5, 1111)
    _build(tmp_path, out)
    # published later: a second granule of the same overpass (clearer, so it is read first)
    late = _item(tmp_path, "a2", 5, 4444)
    late["properties"]["eo:cloud_cover"] = 1.0
    (tmp_path / "items" / "a2.json").write_text(json.dumps(late))
    rec = _build(tmp_path, out)
    assert len(rec["steps_written"]) == 1
    ds, _ = _cube(out)
    assert ds.attrs["geoproc:source_items"] == [["a2", "a"]]
    assert np.allclose(ds.red.values[0], 0.4444)


def test_an_older_date_is_inserted_in_time_order(tmp_path):
    out = tmp_path / "out"
    _item(tmp_path, "b", 9, 3333)
    _item(tmp_path, "c", 12, 5555)
    _build(tmp_path, out)
    _item(tmp_path, "a", 5, 1111)  # a date before the store's last one
    # a search that does not cover the later dates cannot move them: refused, naming the fix
    rec = _build(tmp_path, out, start="2024-06-01", end="2024-06-06")
    assert [r["items"] for r in rec["steps_refused"]] == [["a"]]
    assert "--start 2024-06-05" in rec["steps_refused"][0]["reason"]
    assert "--end 2024-06-12" in rec["steps_refused"][0]["reason"]
    assert _cube(out)[1] == [9, 12]
    rec = _build(tmp_path, out)
    assert rec["steps_refused"] == []
    ds, days = _cube(out)
    assert days == [5, 9, 12] and ds.time_complete.values.all()
    np.testing.assert_allclose(ds.red.values[:, 0, 0], [0.1111, 0.3333, 0.5555], rtol=1e-6)
    assert ds.attrs["geoproc:source_items"] == [["a"], ["b"], ["c"]]
