"""`geoproc extract --polygons`: statistics over the pixels whose centre is inside."""

from __future__ import annotations

import numpy as np
import pandas as pd

from geoproc.cli import main
from tests.helpers.timeseries_cube import RES, X0, Y0, stored, to_lonlat, write_geojson


def _lonlat_ring(rows_cols: list[tuple[float, float]]) -> list[list[float]]:
    """A ring given in (row, col) pixel-edge units, as lon/lat."""
    ring = []
    for r, c in rows_cols:
        lon, lat = to_lonlat(X0 + c * RES, Y0 - r * RES)
        ring.append([lon, lat])
    return ring + [ring[0]]


def test_zonal_statistics_equal_numpy_on_the_centre_mask(cube, tmp_path):
    # An L over rows 10..29 x cols 20..39 minus rows 10..19 x cols 30..39, its edges a quarter
    # pixel outside the centres' rectangle, so all-touched would add a ring of pixels.
    q = 0.25
    L = [(10 - q, 20 - q), (10 - q, 30 - q), (20 - q, 30 - q), (20 - q, 40 + q),
         (30 + q, 40 + q), (30 + q, 20 - q)]  # fmt: skip
    geoms = {"field-L": {"type": "Polygon", "coordinates": [_lonlat_ring(L)]}}
    polygons = write_geojson(tmp_path / "z.geojson", geoms)
    out = tmp_path / "zonal.csv"
    assert main(["extract", "--polygons", str(polygons), "--cube", str(cube),
                 "--variables", "red", "--out", str(out)]) == 0  # fmt: skip
    table = pd.read_csv(out, float_precision="round_trip")
    mask = np.zeros((70, 90), bool)
    mask[10:30, 20:40] = True
    mask[10:20, 30:40] = False
    assert mask.sum() == 300
    red = stored(cube, "red")
    assert len(table) == red.shape[0]
    for t, row in enumerate(table.itertuples()):
        values = red[t][mask]
        valid = values[np.isfinite(values)]
        assert row.count_valid == valid.size and row.count_masked == 300 - valid.size
        np.testing.assert_allclose(row.mean, valid.mean(), rtol=1e-12)
        np.testing.assert_allclose(row.median, np.median(valid), rtol=1e-12)
        np.testing.assert_allclose(row.std, valid.std(), rtol=1e-12)
    assert (table.count_masked > 0).any()


def test_polygon_over_the_store_edge_counts_only_pixels_inside(cube, tmp_path):
    # half outside the store's left edge: rows 0..3, cols -5..4 -> 4 x 5 pixels inside
    ring = _lonlat_ring([(0.5 - 0.25, -5), (0.5 - 0.25, 5), (4.5 - 0.25, 5), (4.5 - 0.25, -5)])
    polygons = write_geojson(
        tmp_path / "z.geojson", {"edge": {"type": "Polygon", "coordinates": [ring]}}
    )
    out = tmp_path / "zonal.csv"
    assert main(["extract", "--polygons", str(polygons), "--cube", str(cube),
                 "--variables", "fmask", "--out", str(out)]) == 0  # fmt: skip
    table = pd.read_csv(out)
    fmask = stored(cube, "fmask")[:, 0:4, 0:5]
    assert (table.count_valid == 20).all() and (table.count_masked == 0).all()
    np.testing.assert_allclose(table["mean"], fmask.reshape(len(table), -1).mean(axis=1))
