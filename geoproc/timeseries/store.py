"""A cube or product store opened for time-series reads: variables, grid, CRS, bounds.

Why one opener: extraction and zonal statistics must agree on which dates exist (a cube's
incomplete steps are never read), on the pixel grid (edges, not centres, decide which pixel
holds a point) and on the message when a store or a variable is not there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import xarray as xr
from affine import Affine
from pyproj import CRS

from geoproc import storage
from geoproc.errors import UsageError

TIME_DIMS = ("time", "year")
"""Leading dimensions a series runs along: dates (cubes, flood, LST) or years (canopy)."""


@dataclass(frozen=True)
class SeriesStore:
    """A store's decoded variables (lazy, no Dask), its grid and where it came from."""

    url: str
    option: str
    """The command-line option that named it (``--cube``, ``--product``), for messages."""
    ds: xr.Dataset
    crs: CRS
    transform: Affine
    """Pixel (col, row) -> store CRS (x, y) of the upper-left corner, as GDAL."""

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.ds.sizes["y"]), int(self.ds.sizes["x"])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the pixel edges, in the store's CRS."""
        ny, nx = self.shape
        xs = [self.transform.c, self.transform.c + nx * self.transform.a]
        ys = [self.transform.f, self.transform.f + ny * self.transform.e]
        return min(xs), min(ys), max(xs), max(ys)

    def describe_bounds(self) -> str:
        """The bounds in the store's CRS and in lon/lat, for error messages."""
        from pyproj import Transformer

        xmin, ymin, xmax, ymax = self.bounds
        to_ll = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
        lon, lat = to_ll.transform([xmin, xmax, xmin, xmax], [ymin, ymin, ymax, ymax])
        return (
            f"x {xmin:.1f}..{xmax:.1f}, y {ymin:.1f}..{ymax:.1f} in {self.crs.to_string()} "
            f"(lon {min(lon):.5f}..{max(lon):.5f}, lat {min(lat):.5f}..{max(lat):.5f})"
        )

    def pixel_of(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, col, inside) of the pixels whose area holds each point (store CRS).

        The pixel is the one whose edges enclose the point (GDAL's rule), so a point 1 cm
        inside a pixel's edge belongs to that pixel, not to the neighbour whose centre
        happens to be nearly as close.
        """
        t = self.transform  # north-up, no rotation (built from 1-D x/y coordinates)
        col_f = (np.asarray(x, float) - t.c) / t.a
        row_f = (np.asarray(y, float) - t.f) / t.e
        col = np.floor(col_f).astype(np.int64)
        row = np.floor(row_f).astype(np.int64)
        ny, nx = self.shape
        inside = (row >= 0) & (row < ny) & (col >= 0) & (col < nx)
        return row, col, inside

    @property
    def time_dim(self) -> str | None:
        return next((d for d in TIME_DIMS if d in self.ds.dims), None)


def open_series_store(
    url: str,
    *,
    option: str,
    cube: bool,
    variables: list[str] | None = None,
    start: date | None = None,
    end: date | None = None,
) -> SeriesStore:
    """Open a store lazily; a cube keeps only its complete steps; select variables and dates.

    Raises `UsageError` naming ``option`` when there is no store, ``--variables`` when a
    name is not in it, and ``--start``/``--end`` when no date is left.
    """
    location = storage.parse_url(url, argument=option)
    ds = _open(location, option)
    if cube and "time_complete" in ds:
        ds = ds.isel(time=np.flatnonzero(ds["time_complete"].values.astype(bool)))
        if not ds.sizes["time"]:
            raise UsageError(f"{option} {location.url} holds no complete date yet: build it first.")
    crs = _crs_of(ds, location.url, option)
    transform = _transform_of(ds, location.url, option)
    if variables is not None:
        # a series per pixel: (time or year, y, x) or (y, x); extra dims (canopy's class) no
        spatial = [
            n for n, v in ds.data_vars.items()
            if {"y", "x"} <= set(v.dims) <= {"y", "x", *TIME_DIMS}
        ]  # fmt: skip
        unknown = [v for v in variables if v not in spatial]
        if unknown or not variables:
            raise UsageError(
                f"--variables: {', '.join(unknown) or '(none)'} not in {location.url} as a "
                f"per-pixel series; it holds {', '.join(sorted(spatial))}."
            )
        ds = ds[variables]
    ds = _select_dates(ds, start, end, location.url)
    return SeriesStore(location.url, option, ds, crs, transform)


def _open(location: storage.Location, option: str) -> xr.Dataset:
    if not storage.exists(location):
        raise UsageError(
            f"{option} {location.url} does not exist: pass a cube store (OUT/cubes/TILE.zarr) "
            "or a product store (OUT/products/PRODUCT/TILE.zarr)."
        )
    try:
        return xr.open_zarr(
            storage.zarr_store(location, read_only=True), chunks=None, decode_coords="all"
        )
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise UsageError(
            f"{option} {location.url} is not a Zarr store ({exc}): pass a cube or product store."
        ) from None


def _crs_of(ds: xr.Dataset, url: str, option: str) -> CRS:
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    crs = ds.rio.crs
    if crs is None:
        raise UsageError(f"{option} {url} has no CRS (no spatial_ref): pass a geoproc store.")
    return CRS.from_user_input(crs.to_wkt())


def _transform_of(ds: xr.Dataset, url: str, option: str) -> Affine:
    """The grid from the 1-D x/y centre coordinates (regular, as every geoproc store)."""
    if "x" not in ds.coords or "y" not in ds.coords or ds.sizes["x"] < 2 or ds.sizes["y"] < 2:
        raise UsageError(f"{option} {url} has no x/y grid of at least 2 x 2 pixels.")
    x = ds["x"].values.astype(float)
    y = ds["y"].values.astype(float)
    dx, dy = np.diff(x), np.diff(y)
    if not (np.allclose(dx, dx[0]) and np.allclose(dy, dy[0])):
        raise UsageError(f"{option} {url}: its x/y coordinates are not a regular grid.")
    return Affine(dx[0], 0.0, x[0] - dx[0] / 2, 0.0, dy[0], y[0] - dy[0] / 2)


def _select_dates(ds: xr.Dataset, start: date | None, end: date | None, url: str) -> xr.Dataset:
    if "time" not in ds.dims or (start is None and end is None):
        return ds
    times = ds["time"].values.astype("datetime64[ns]")
    keep = np.ones(times.shape, bool)
    if start is not None:
        keep &= times >= np.datetime64(start, "ns")
    if end is not None:
        keep &= times < np.datetime64(end, "ns") + np.timedelta64(1, "D")
    if not keep.any():
        first, last = (
            (str(t)[:10] for t in (times.min(), times.max())) if times.size else ("-", "-")
        )
        raise UsageError(
            f"--start/--end select no date of {url} (it holds {first}..{last}): widen them."
        )
    return ds.isel(time=np.flatnonzero(keep))
