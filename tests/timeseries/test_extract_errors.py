"""`geoproc extract` refuses bad input with exit 2/3, a message naming what to change, no file."""

from __future__ import annotations

import importlib.util

import pytest

from geoproc.cli import main
from tests.helpers.timeseries_cube import RES, X0, Y0, to_lonlat, write_geojson


def _run(capsys, *args) -> tuple[int, str]:
    code = main(["extract", *map(str, args)])
    return code, capsys.readouterr().err


@pytest.fixture
def points(tmp_path):
    lon, lat = to_lonlat(X0 + 100.0, Y0 - 100.0)
    return write_geojson(
        tmp_path / "p.geojson", {"a": {"type": "Point", "coordinates": [lon, lat]}}
    )


def test_points_outside_the_store_name_the_file_and_bounds(cube, tmp_path, capsys):
    lon, lat = to_lonlat(X0 - 5 * RES, Y0 - 100.0)  # 5 pixels left of the store
    far = write_geojson(
        tmp_path / "far.geojson", {"far-1": {"type": "Point", "coordinates": [lon, lat]}}
    )
    out = tmp_path / "o.csv"
    code, err = _run(capsys, "--points", far, "--cube", cube, "--variables", "red", "--out", out)
    assert code == 2 and not out.exists()
    assert (
        str(far) in err and "far-1" in err and "x 400000.0..402700.0, y 4997900.0..5000000.0" in err
    )
    assert "Traceback" not in err


def test_polygon_wholly_outside_is_refused(cube, tmp_path, capsys):
    ring = [
        list(to_lonlat(X0 + dx, Y0 + dy)) for dx, dy in [(0, 100), (300, 100), (300, 400), (0, 100)]
    ]
    poly = write_geojson(
        tmp_path / "z.geojson", {"north": {"type": "Polygon", "coordinates": [ring]}}
    )
    out = tmp_path / "o.csv"
    code, err = _run(capsys, "--polygons", poly, "--cube", cube, "--variables", "red", "--out", out)
    assert code == 2 and not out.exists()
    assert str(poly) in err and "north" in err and "lon " in err


@pytest.mark.parametrize(
    ("extra", "expect_code", "expect_text"),
    [
        (["--variables", "red,ndvi"], 2, "--variables: ndvi not in"),
        (
            ["--variables", "red", "--out", "{tmp}/o.xlsx"],
            2,
            "--out {tmp}/o.xlsx: end the name with .csv",
        ),
        (["--variables", "red", "--start", "2025-01-01"], 2, "--start/--end select no date"),
        (["--variables", "red", "--start", "2024-02-30"], 2, "--start '2024-02-30' is not a date"),
        (["--variables", "red", "--crs", "EPSG:3857"], 2, "--crs applies to"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(
    cube, points, tmp_path, capsys, extra, expect_code, expect_text
):
    args = ["--points", points, "--cube", cube, *(a.format(tmp=tmp_path) for a in extra)]
    if "--out" not in extra:
        args += ["--out", tmp_path / "o.csv"]
    code, err = _run(capsys, *args)
    assert code == expect_code, err
    assert expect_text.format(tmp=tmp_path) in err
    assert not list(tmp_path.glob("o.*"))


def test_missing_points_file_is_exit_3_and_missing_store_exit_2(cube, points, tmp_path, capsys):
    code, err = _run(capsys, "--points", tmp_path / "nope.geojson", "--cube", cube,
                     "--variables", "red", "--out", tmp_path / "o.csv")  # fmt: skip
    assert code == 3 and "nope.geojson does not exist" in err
    code, err = _run(capsys, "--points", points, "--product", tmp_path / "none.zarr",
                     "--variables", "red", "--out", tmp_path / "o.csv")  # fmt: skip
    assert code == 2 and "--product" in err and "none.zarr does not exist" in err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None, reason="pyarrow installed")
def test_parquet_without_pyarrow_is_a_clear_usage_error(cube, points, tmp_path, capsys):
    out = tmp_path / "o.parquet"
    code, err = _run(capsys, "--points", points, "--cube", cube, "--variables", "red", "--out", out)
    assert code == 2 and "needs pyarrow" in err and "FILE.csv" in err and not out.exists()


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow not installed")
def test_parquet_holds_the_same_table_as_csv(cube, points, tmp_path):
    import pandas as pd

    base = ["extract", "--points", str(points), "--cube", str(cube), "--variables", "red,fmask"]
    assert main([*base, "--out", str(tmp_path / "o.parquet")]) == 0
    assert main([*base, "--out", str(tmp_path / "o.csv")]) == 0
    pq = pd.read_parquet(tmp_path / "o.parquet")
    cs = pd.read_csv(tmp_path / "o.csv", float_precision="round_trip")
    assert pq["value"].isna().tolist() == cs["value"].isna().tolist()
    assert pq["value"].fillna(-1).tolist() == cs["value"].fillna(-1).tolist()
    assert pq["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").tolist() == cs["time"].tolist()


@pytest.mark.parametrize(
    ("features", "option", "text"),
    [
        ([1], "--polygons", "feature 0 is not a GeoJSON object"),
        ([{"type": "Feature", "geometry": {"type": "Point", "coordinates": [[1, 2], 3]}}],
         "--points", "feature 0's coordinates"),
    ],
)  # fmt: skip
def test_malformed_geojson_is_a_usage_error(cube, tmp_path, capsys, features, option, text):
    import json

    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    out = tmp_path / "o.csv"
    code, err = _run(capsys, option, bad, "--cube", cube, "--variables", "red", "--out", out)
    assert code == 2 and text in err and "Traceback" not in err and not out.exists()
