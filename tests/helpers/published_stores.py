"""Synthetic product stores shaped like the real ones, for the publishing tests.

Two processing tiles on either side of the UTM 32/33 zone boundary (12 deg E, ~47.5 deg N).
Pixel values encode their own longitude/latitude (odc-geo style), so a value read back
from a COG or a web tile tells where it came from. Each tile holds data only up to ~5
pixels past the zone meridian (the overlap real tiles have), nodata beyond it, so a web
tile rendered from one source only would show a gap at the boundary.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr
from pyproj import Transformer

from geoproc import storage

SIZE = 300
RES = 30.0
DATES = ("2024-05-01", "2024-05-17")
BOUNDARY_LON = 12.0
OVERLAP_DEG = 0.002
# Upper-left corners (UTM metres) of the two tiles: both straddle 12 E at ~47.5 N.
TILES = {
    "32N_0080_0584": (32632, 720000.0, 5270000.0),
    "33N_0030_0584": (32633, 270000.0, 5270000.0),
}


def lst_of(lon: np.ndarray, lat: np.ndarray, day: int) -> np.ndarray:
    """LST (K) as a smooth function of position and date: equal in both zones."""
    return (290.0 + 40.0 * (lon - 12.0) + 20.0 * (lat - 47.5) + 0.5 * day).astype("float32")


def water_of(lon: np.ndarray, lat: np.ndarray, day: int) -> np.ndarray:
    """Classes by position: permanent water band, flood band that widens with date."""
    water = np.zeros(lon.shape, dtype="uint8")
    water[(lat > 47.46) & (lat < 47.47)] = 1
    water[(lat >= 47.47) & (lat < 47.48 + 0.002 * day)] = 2
    return water


def _lonlat(epsg: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xx, yy = np.meshgrid(x, y)
    lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(xx, yy)
    return lon, lat


def _zone_mask(epsg: int, lon: np.ndarray) -> np.ndarray:
    if epsg == 32632:
        return lon <= BOUNDARY_LON + OVERLAP_DEG
    return lon >= BOUNDARY_LON - OVERLAP_DEG


def tile_grid(tile: str) -> tuple[int, np.ndarray, np.ndarray]:
    epsg, left, top = TILES[tile]
    x = left + RES / 2 + RES * np.arange(SIZE)
    y = top - RES / 2 - RES * np.arange(SIZE)
    return epsg, x, y


def _base(tile: str, dims_value: tuple[str, np.ndarray]) -> tuple[xr.Dataset, np.ndarray, ...]:
    epsg, x, y = tile_grid(tile)
    ds = xr.Dataset(coords={dims_value[0]: dims_value[1], "y": y, "x": x})
    ds = ds.rio.write_crs(f"EPSG:{epsg}")
    return ds, epsg, x, y


def _cf(da: xr.DataArray, attrs: dict, fill) -> xr.DataArray:
    da.attrs.update(attrs)
    da.attrs["grid_mapping"] = "spatial_ref"
    da.encoding["_FillValue"] = fill
    return da


def build_flood_store(tile: str, *, dates=DATES) -> xr.Dataset:
    times = pd.to_datetime(list(dates)).values
    ds, epsg, x, y = _base(tile, ("time", times))
    lon, lat = _lonlat(epsg, x, y)
    inside = _zone_mask(epsg, lon)
    water, prob = [], []
    for i, _ in enumerate(dates):
        w = water_of(lon, lat, i)
        p = np.where(w > 0, 90, 5).astype("uint8")
        w = np.where(inside, w, 255).astype("uint8")
        p = np.where(inside, p, 255).astype("uint8")
        # A cloud hole: masked input -> nodata output.
        w[10:20, 10:20] = 255
        p[10:20, 10:20] = 255
        water.append(w)
        prob.append(p)
    ds["water"] = _cf(
        xr.DataArray(np.stack(water), dims=("time", "y", "x")),
        {
            "units": "1",
            "long_name": "surface water class",
            "flag_values": np.array([0, 1, 2], dtype="uint8"),
            "flag_meanings": "dry permanent_water flood",
        },
        np.uint8(255),
    )
    ds["water_probability"] = _cf(
        xr.DataArray(np.stack(prob), dims=("time", "y", "x")),
        {"units": "%", "long_name": "probability of surface water"},
        np.uint8(255),
    )
    ds.attrs.update(
        product="flood",
        algorithm_version="1.0.0",
        method="DSWx-HLS style spectral tests (OPERA DSWx-HLS ATBD)",
        parameters="{}",
        source_items=json.dumps(
            {
                d: (["HLS.S30.T32TQT.2024122T101559.v2.0"] if i == 0 else [])
                for i, d in enumerate(dates)
            }
        ),
    )
    return ds


def build_lst_store(tile: str, *, dates=DATES) -> xr.Dataset:
    times = pd.to_datetime(list(dates)).values
    ds, epsg, x, y = _base(tile, ("time", times))
    lon, lat = _lonlat(epsg, x, y)
    inside = _zone_mask(epsg, lon)
    lst = []
    for i, _ in enumerate(dates):
        v = lst_of(lon, lat, i)
        v = np.where(inside, v, np.nan).astype("float32")
        v[200:230, 50:60] = np.nan
        lst.append(v)
    ds["lst"] = _cf(
        xr.DataArray(np.stack(lst), dims=("time", "y", "x")),
        {
            "units": "K",
            "long_name": "land surface temperature",
            "standard_name": "surface_temperature",
        },
        np.float32(np.nan),
    )
    ds.attrs.update(
        product="lst",
        algorithm_version="0.3.0",
        method="single-channel RTE inversion (Jimenez-Munoz et al. 2014)",
        parameters="{}",
    )
    return ds


def build_canopy_store(tile: str, *, years=(2023,)) -> xr.Dataset:
    ds, epsg, x, y = _base(tile, ("year", np.array(years, dtype="int64")))
    lon, lat = _lonlat(epsg, x, y)
    inside = _zone_mask(epsg, lon)
    cls = ((lat * 100).astype(int) % 3).astype("uint8")
    cls = np.where(inside, cls, 255).astype("uint8")
    ds["canopy_class"] = _cf(
        xr.DataArray(np.stack([cls] * len(years)), dims=("year", "y", "x")),
        {
            "units": "1",
            "long_name": "tree canopy class",
            "flag_values": np.array([0, 1, 2], dtype="uint8"),
            "flag_meanings": "none broadleaf conifer",
        },
        np.uint8(255),
    )
    ds.attrs.update(product="canopy", algorithm_version="0.1.0", method="RF", parameters="{}")
    return ds


BUILDERS = {"flood": build_flood_store, "lst": build_lst_store, "canopy": build_canopy_store}


def write_product_stores(out_url: str | Path, products=("flood", "lst")) -> None:
    """Write `{out}/products/{product}/{tile}.zarr` for both tiles."""
    root = storage.parse_url(str(out_url))
    for product in products:
        for tile in TILES:
            ds = BUILDERS[product](tile)
            url = root.join("products", product, f"{tile}.zarr")
            ds.to_zarr(storage.zarr_store(url), mode="w", consolidated=True, zarr_format=3)


def publish_sample(out: str | Path, *, products=("flood", "lst"), run_id: str = "run-1") -> dict:
    """Write the synthetic stores under ``out`` and publish them."""
    from geoproc.publish.publisher import publish_run

    write_product_stores(out, products=products)
    return publish_run(str(out), run_id=run_id)


def snapshot(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every published object (stores excluded)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.relative_to(root).as_posix().startswith("products/")
    }


_SHARED: dict[str, Path] = {}
SHARED_RUN_ID = "run-shared"


def shared_published() -> Path:
    """One publish of all three products per test session, shared read-only by test modules."""
    if "out" not in _SHARED:
        tmp = Path(tempfile.mkdtemp(prefix="geoproc-publish-test-"))
        atexit.register(shutil.rmtree, tmp, True)
        publish_sample(tmp / "out", products=("flood", "lst", "canopy"), run_id=SHARED_RUN_ID)
        _SHARED["out"] = tmp / "out"
    return _SHARED["out"]
