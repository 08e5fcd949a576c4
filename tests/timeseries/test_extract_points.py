"""`geoproc extract --points`: the right pixel, the stored values, masked stays empty."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
from pyproj import Transformer

from geoproc.cli import main
from tests.helpers.timeseries_cube import RES, X0, Y0, stored, to_lonlat, write_geojson


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_points_near_pixel_edges_take_the_pixel_that_holds_them(cube, tmp_path):
    # 5 cm on either side of the corner shared by pixels (6, 9) and (7, 10)
    ex, ey = X0 + 10 * RES, Y0 - 7 * RES
    inside = {"in": (ex + 0.05, ey - 0.05), "before": (ex - 0.05, ey + 0.05)}
    geoms = {}
    for name, (x, y) in inside.items():
        lon, lat = to_lonlat(x, y)
        geoms[name] = {"type": "Point", "coordinates": [lon, lat]}
    points = write_geojson(tmp_path / "p.geojson", geoms)
    out = tmp_path / "series.csv"
    assert main(["extract", "--points", str(points), "--cube", str(cube),
                 "--variables", "red,fmask", "--out", str(out)]) == 0  # fmt: skip
    table = pd.read_csv(out, float_precision="round_trip")
    got = table.groupby("point_id")[["row", "col"]].first()
    assert tuple(got.loc["in"]) == (7, 10)
    assert tuple(got.loc["before"]) == (6, 9)
    red, fmask = stored(cube, "red"), stored(cube, "fmask")
    for pid, (r, c) in {"in": (7, 10), "before": (6, 9)}.items():
        sel = table[(table.point_id == pid) & (table.variable == "red")]
        np.testing.assert_array_equal(sel.value.to_numpy(), red[:, r, c])
        sel = table[(table.point_id == pid) & (table.variable == "fmask")]
        np.testing.assert_array_equal(sel.value.to_numpy(), fmask[:, r, c])
    # the incomplete date 2 (2024-01-11) is not in the series; 5 complete dates remain
    times = table[(table.point_id == "in") & (table.variable == "red")].time.tolist()
    assert times == ["2024-01-01T10:30:00Z", "2024-01-06T10:30:00Z", "2024-01-16T10:30:00Z",
                     "2024-01-21T10:30:00Z", "2024-01-26T10:30:00Z"]  # fmt: skip


def test_projected_csv_points_are_reprojected_and_masked_values_stay_empty(cube, tmp_path):
    red = stored(cube, "red")
    t, r, c = np.argwhere(np.isnan(red))[0]  # a masked observation
    assert np.isfinite(red[:, r, c]).any()
    # the pixel centre, written in Web Mercator
    x, y = X0 + (c + 0.5) * RES, Y0 - (r + 0.5) * RES
    mx, my = Transformer.from_crs("EPSG:32633", "EPSG:3857", always_xy=True).transform(x, y)
    points = tmp_path / "p.csv"
    points.write_text(f"id,x,y\nwell-1,{mx!r},{my!r}\n")
    out = tmp_path / "series.csv"
    assert main(["extract", "--points", str(points), "--crs", "EPSG:3857", "--cube", str(cube),
                 "--variables", "red", "--out", str(out)]) == 0  # fmt: skip
    rows = _rows(out)
    assert {(int(x["row"]), int(x["col"])) for x in rows} == {(r, c)}
    assert rows[t]["value"] == ""  # masked: empty, never a fill number
    values = [float(x["value"]) if x["value"] else np.nan for x in rows]
    np.testing.assert_array_equal(values, red[:, r, c])


def test_start_end_select_dates_and_lonlat_csv(cube, tmp_path):
    lon, lat = to_lonlat(X0 + 45.0, Y0 - 45.0)  # centre of pixel (1, 1)
    points = tmp_path / "p.csv"
    points.write_text(f"lon,lat\n{lon!r},{lat!r}\n")
    out = tmp_path / "series.csv"
    assert main(["extract", "--points", str(points), "--cube", str(cube), "--variables", "nir08",
                 "--start", "2024-01-06", "--end", "2024-01-21", "--out", str(out)]) == 0  # fmt: skip
    rows = _rows(out)
    assert [x["time"][:10] for x in rows] == ["2024-01-06", "2024-01-16", "2024-01-21"]
    assert {x["point_id"] for x in rows} == {"0"}
    nir = stored(cube, "nir08")[1:4, 1, 1]
    np.testing.assert_array_equal([float(x["value"]) if x["value"] else np.nan for x in rows], nir)
