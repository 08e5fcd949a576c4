"""`geoproc rechunk`: an exact, GDAL-readable, resumable and incremental time-chunked copy."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import zarr

from geoproc.cli import main
from geoproc.dev.bench._timeseries_cube import write_packed_cube
from tests.helpers.timeseries_cube import DATES, NX, NY, to_lonlat, write_geojson

VARS = ("fmask", "nir08", "red")


def _files(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under a store."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }  # fmt: skip


def _rechunk(src, out, *extra) -> int:
    return main(
        ["rechunk", str(src), "--time-chunk", "4", "--space-chunk", "16", "--out", str(out), *extra]
    )


def _assert_exact_copy(src: Path, out: Path) -> None:
    a, b = zarr.open_group(str(src), mode="r"), zarr.open_group(str(out), mode="r")
    keep = np.flatnonzero(a["time_complete"][:])
    assert b["red"].chunks == (4, 16, 16) and b["red"].metadata.zarr_format == 2
    for name in VARS:  # stored numbers, bit for bit
        assert b[name].dtype == a[name].dtype
        np.testing.assert_array_equal(b[name][:], a[name].oindex[keep])
    np.testing.assert_array_equal(b["time"][:], a["time"].oindex[keep])
    assert [p.decode() for p in b["platform"][:]] == list(a["platform"].oindex[keep])


def test_copy_equals_the_complete_dates_and_gdal_reads_it(cube, tmp_path):
    import rasterio
    import xarray as xr

    out = tmp_path / "copy.zarr"
    assert _rechunk(cube, out) == 0
    _assert_exact_copy(cube, out)
    assert not (tmp_path / "copy.zarr.rechunk").exists()
    src = xr.open_zarr(cube, decode_coords="all")
    src = src.isel(time=src.time_complete.values)
    copy = xr.open_zarr(out, decode_coords="all")
    xr.testing.assert_identical(src.red.load(), copy.red.load())  # decoded: values, coords, attrs
    with rasterio.open(f'ZARR:"{out}":/red') as ds:
        assert ds.crs.to_epsg() == 32633 and ds.count == DATES - 1
        assert tuple(ds.transform)[:6] == (30.0, 0.0, 400000.0, 0.0, -30.0, 5000000.0)
        np.testing.assert_array_equal(ds.read(3), zarr.open_group(str(out))["red"][2])
    # `geoproc extract` gives the same table from the copy as from the cube
    lon, lat = to_lonlat(400_000.0 + 333.0, 5_000_000.0 - 777.0)
    points = write_geojson(
        tmp_path / "p.geojson", {"a": {"type": "Point", "coordinates": [lon, lat]}}
    )
    for store, name in ((cube, "a.csv"), (out, "b.csv")):
        argv = [
            "extract",
            "--points",
            str(points),
            "--cube",
            str(store),
            "--variables",
            "red,fmask",
        ]
        assert main([*argv, "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert len((tmp_path / "a.csv").read_text().splitlines()) == 1 + 2 * (DATES - 1)


def test_killed_copy_rerun_gives_the_bytes_of_a_clean_copy(cube, tmp_path, monkeypatch, capsys):
    import geoproc.timeseries.rechunk as rk

    clean = tmp_path / "clean.zarr"
    assert _rechunk(cube, clean) == 0
    real, calls = rk._copy_window, []

    def dies_in_window_3(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            real(*args, **{**kwargs})  # half the work of this window is done ...
            raise KeyboardInterrupt  # ... and the process dies before its marker
        return real(*args, **kwargs)

    monkeypatch.setattr(rk, "_copy_window", dies_in_window_3)
    out = tmp_path / "killed.zarr"
    assert _rechunk(cube, out) == 130
    assert len(list((tmp_path / "killed.zarr.rechunk").rglob("w*.done"))) == 2
    monkeypatch.setattr(rk, "_copy_window", real)
    capsys.readouterr()
    assert _rechunk(cube, out) == 0
    assert '"windows_resumed": 2' in capsys.readouterr().out
    assert _files(out) == _files(clean)
    assert not (tmp_path / "killed.zarr.rechunk").exists()


@pytest.mark.parametrize("where", ["_write_layout", "_commit"])
def test_kill_in_template_or_before_consolidation_is_finished_by_a_rerun(
    cube, tmp_path, monkeypatch, where
):
    import sys

    clean = tmp_path / "clean.zarr"
    assert _rechunk(cube, clean) == 0
    out = tmp_path / "out.zarr"
    real = zarr.consolidate_metadata

    def dies_in(*args, **kwargs):
        frames = [sys._getframe(i).f_code.co_name for i in range(1, 12)]
        if where in frames:  # the template's consolidation, or the commit's
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(zarr, "consolidate_metadata", dies_in)
        assert _rechunk(cube, out) == 130
    assert _files(out) != _files(clean)
    assert _rechunk(cube, out) == 0
    assert _files(out) == _files(clean)


def test_rerun_after_new_dates_appends_only_them(cube, tmp_path, capsys):
    out = tmp_path / "copy.zarr"
    assert _rechunk(cube, out) == 0  # 5 complete dates: time chunks [0:4], [4:5]
    first_chunk = out / "red" / "0.0.0"
    before = (first_chunk.stat().st_mtime_ns, first_chunk.read_bytes())
    write_packed_cube(str(cube), dates=DATES + 4, ny=NY, nx=NX, chunks=(1, 32, 32),
                      incomplete=(2,), first=DATES)  # fmt: skip
    capsys.readouterr()
    assert _rechunk(cube, out) == 0
    text = capsys.readouterr().out
    assert (
        '"status": "appended"' in text
        and '"dates_before": 5' in text
        and '"dates_after": 9' in text
    )
    assert (first_chunk.stat().st_mtime_ns, first_chunk.read_bytes()) == before  # untouched
    _assert_exact_copy(cube, out)
    clean = tmp_path / "clean.zarr"
    assert _rechunk(cube, clean) == 0
    assert _files(out) == _files(clean)  # appending gives the bytes of a fresh copy
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert _rechunk(cube, out) == 0
    assert '"status": "up to date"' in capsys.readouterr().out
    assert _files(out) == _files(clean)
    assert sum(p.stat().st_mtime_ns != t for p, t in mtimes.items() if "/red/" in str(p)) == 0


def test_product_store_without_time_complete_and_all_time(tmp_path):
    src = tmp_path / "flood.zarr"
    write_packed_cube(str(src), dates=3, ny=40, nx=40, chunks=(1, 32, 32), zarr_format=2)
    g = zarr.open_group(str(src), mode="r+")
    del g["time_complete"]
    zarr.consolidate_metadata(str(src))
    out = tmp_path / "copy.zarr"
    assert main(["rechunk", str(src), "--time-chunk", "all", "--out", str(out)]) == 0
    b = zarr.open_group(str(out), mode="r")
    assert b["red"].chunks == (3, 40, 40)
    np.testing.assert_array_equal(b["red"][:], g["red"][:])


@pytest.mark.parametrize(
    ("case", "code", "text"),
    [
        ("foreign", 2, "exists and is not a geoproc time-chunked copy"),
        ("other-chunk", 2, "--time-chunk 8: "),
        ("bad-chunk", 2, "--time-chunk 'zero': pass a positive number"),
        ("no-source", 2, "does not exist"),
        ("inside", 2, "is the source store or inside it"),
    ],
)
def test_bad_requests_exit_2_and_write_nothing(cube, tmp_path, capsys, case, code, text):
    out = tmp_path / "copy.zarr"
    src, chunk = cube, "4"
    if case == "foreign":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif case == "other-chunk":
        assert _rechunk(cube, out) == 0
        chunk = "8"
    elif case == "bad-chunk":
        chunk = "zero"
    elif case == "no-source":
        src = tmp_path / "none.zarr"
    elif case == "inside":
        out = cube / "copy.zarr"
    before = _files(tmp_path)
    capsys.readouterr()
    assert main(["rechunk", str(src), "--time-chunk", chunk, "--out", str(out)]) == code
    err = capsys.readouterr().err
    assert text in err and "Traceback" not in err
    assert _files(tmp_path) == before
    assert not os.path.exists(f"{out}.lock")


@pytest.mark.slow  # ~15 s of small requests to moto on 2 shared cores
def test_copy_and_extract_on_s3(cube, tmp_path, s3_bucket, capsys):
    """Stores, progress markers, lock and table go through geoproc.storage on S3 too."""
    out = f"s3://{s3_bucket}/timeseries/T1.zarr"
    assert _rechunk(cube, out) == 0
    assert _rechunk(cube, out) == 0
    assert '"status": "up to date"' in capsys.readouterr().out
    from tests.helpers.timeseries_cube import to_lonlat

    lon, lat = to_lonlat(400_000.0 + 500.0, 5_000_000.0 - 500.0)
    points = write_geojson(
        tmp_path / "p.geojson", {"a": {"type": "Point", "coordinates": [lon, lat]}}
    )
    base = ["extract", "--points", str(points), "--variables", "red", "--out"]
    assert main([*base, f"s3://{s3_bucket}/a.csv", "--cube", out]) == 0
    assert main([*base, str(tmp_path / "b.csv"), "--cube", str(cube)]) == 0
    from geoproc import storage

    assert storage.read_bytes(f"s3://{s3_bucket}/a.csv") == (tmp_path / "b.csv").read_bytes()
    assert not storage.exists(f"s3://{s3_bucket}/timeseries/T1.zarr.rechunk")


@pytest.mark.parametrize("rewrite", ["product", "cube-step"])
def test_a_source_rewritten_in_place_is_copied_again(cube, tmp_path, capsys, rewrite):
    """Same dates, new values: a rewritten product store or a cube step rebuilt from a late
    granule must not leave the copy holding the old values as "up to date"."""
    out = tmp_path / "copy.zarr"
    src = zarr.open_group(str(cube), mode="r+")
    n = src["time"].shape[0]
    src.attrs.update(
        {"geoproc:input_fingerprint": "a", "geoproc:source_items": [[f"i{k}"] for k in range(n)]}
    )
    zarr.consolidate_metadata(str(cube))
    assert _rechunk(cube, out) == 0
    red = src["red"]
    red[0] = red[0] + 7  # date 0 rewritten in place
    if rewrite == "product":
        src.attrs["geoproc:input_fingerprint"] = "b"
    else:
        src.attrs["geoproc:source_items"] = [["late"], *[[f"i{k}"] for k in range(1, n)]]
    zarr.consolidate_metadata(str(cube))
    capsys.readouterr()
    assert _rechunk(cube, out) == 0
    assert '"status": "written"' in capsys.readouterr().out
    _assert_exact_copy(cube, out)
    assert _rechunk(cube, out) == 0  # and now it is current
    assert '"status": "up to date"' in capsys.readouterr().out


def test_a_per_year_class_variable_is_left_out_and_appends_open(tmp_path):
    """Canopy's (year, class, y, x) probabilities are not series: left out, so a new year
    grows every copied array together and the copy still opens."""
    import xarray as xr

    from geoproc.timeseries.rechunk import rechunk_store

    def canopy(n: int) -> xr.Dataset:
        return xr.Dataset(
            {
                "canopy": (("year", "y", "x"), np.arange(n * 64, dtype="u1").reshape(n, 8, 8)),
                "prob": (("year", "class", "y", "x"), np.ones((n, 3, 8, 8), "f4")),
            },
            coords={"year": np.arange(2020, 2020 + n), "class": ["a", "b", "c"],
                    "y": np.arange(8.0), "x": np.arange(8.0)},
        )  # fmt: skip

    src, out = tmp_path / "canopy.zarr", tmp_path / "copy.zarr"
    canopy(2).to_zarr(src, zarr_format=2, mode="w")
    assert rechunk_store(str(src), str(out)).status == "written"
    canopy(3).to_zarr(src, zarr_format=2, mode="w")
    assert rechunk_store(str(src), str(out)).status == "appended"
    copy = xr.open_zarr(out)
    assert "prob" not in copy and copy.sizes["year"] == 3
    np.testing.assert_array_equal(copy["canopy"].values, canopy(3)["canopy"].values)
