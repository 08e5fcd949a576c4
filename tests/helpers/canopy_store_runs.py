"""A small red/NIR cube that grows date by date, canopy runs on it, and the product store's
data files (no test functions here): shared by the store-switch and yearly-refresh tests."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from geoproc.dev.bench._timeseries_cube import write_packed_cube
from geoproc.dev.synthetic_cube import synthetic_cube
from geoproc.inference._io import zarr_store
from geoproc.product_runner import MARKER, ProductResult, run_product_on_cube
from tests.helpers.store_bytes import store_bytes


def write_ndvi_cube(url: str, *, dates: int, ny: int, nx: int, first: int = 0) -> None:
    """Dates ``first..dates-1`` of a packed red/nir08 cube (5 days apart from 2024-01-01)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_packed_cube(url, dates=dates, first=first, ny=ny, nx=nx, bands=("red", "nir08"))


def write_ndvi_cube_at_once(
    url: str, *, dates: int, ny: int, nx: int, first: int = 0, every_days: int = 5
) -> None:
    """The store `write_ndvi_cube` writes, dates ``first..dates-1`` appended in one write
    (150 dates in about a second instead of ten); ``every_days`` apart (a sparser series
    spans years with fewer dates: faster multi-year tests)."""
    if first == 0:
        write_ndvi_cube(url, dates=1, ny=ny, nx=nx)
        first = 1
    if first >= dates:
        return
    parts = []
    for i in range(first, dates):  # as write_packed_cube builds date i
        ds = synthetic_cube(1, ny, nx, bands=("red", "nir08"), seed=1000 + i, epsg=32633)
        ds = ds.assign_coords(
            time=[np.datetime64("2024-01-01T10:30", "ns") + np.timedelta64(every_days * i, "D")],
            platform=("time", np.array(["S30" if i % 2 else "L30"], dtype="<U3")),
        )
        rng = np.random.default_rng(i)
        ds["fmask"] = (("time", "y", "x"), rng.integers(0, 64, (1, ny, nx), dtype=np.uint8))
        ds["time_complete"] = ("time", np.array([True]))
        parts.append(ds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xr.concat(parts, dim="time").to_zarr(
            zarr_store(url), append_dim="time", zarr_format=3, consolidated=True
        )


def run_canopy(cube_url: str, out: str, *, blocking: str | None = None, **options) -> ProductResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_product_on_cube(
            "canopy", cube_url, out, tile="T", options=options, blocking=blocking
        )


def data_files(store: str) -> dict[str, bytes]:
    """The store's files but the completion marker (which records the cube's dates)."""
    return {k: v for k, v in store_bytes(store).items() if k != MARKER}
