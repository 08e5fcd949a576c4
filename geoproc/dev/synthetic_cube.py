"""A synthetic cube store with the cube contract's shape, for engine tests and benchmarks.

Why: the engine must be exercised (and benchmarked) without a catalog or network. The
cube follows the contract of ``geoproc.cube.assemble``: dims (time, y, x), UTM y/x coordinates,
a ``spatial_ref`` coordinate, ``platform`` along time, float bands by common name with
NaN where masked (cloud-like discs plus scattered pixels).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from geoproc.inference._io import zarr_store

DEFAULT_BANDS = ("blue", "green", "red", "nir08", "swir16", "swir22")


def synthetic_cube(
    nt: int = 2,
    ny: int = 96,
    nx: int = 80,
    *,
    bands: tuple[str, ...] = DEFAULT_BANDS,
    chunks: tuple[int, int, int] = (1, 32, 32),
    masked_fraction: float = 0.05,
    seed: int = 0,
    epsg: int = 32633,
) -> xr.Dataset:
    """Reflectance-like bands on a 30 m UTM grid; NaN where 'clouds' mask the ground."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    data = {}
    clouds = np.zeros((nt, ny, nx), dtype=bool)
    for t in range(nt):
        cy, cx = rng.uniform(0, ny), rng.uniform(0, nx)
        clouds[t] = (yy - cy) ** 2 + (xx - cx) ** 2 < (min(ny, nx) / 6) ** 2
        clouds[t] |= rng.random((ny, nx)) < masked_fraction
    for i, band in enumerate(bands):
        phase = rng.uniform(0, 2 * np.pi)
        base = 0.1 + 0.05 * i + 0.04 * np.sin(xx / 9 + phase) * np.cos(yy / 13 - phase)
        noise = rng.normal(0, 0.01, (nt, ny, nx)).astype(np.float32)
        values = (base[None] + noise).astype(np.float32)
        values[clouds] = np.nan
        data[band] = (
            ("time", "y", "x"),
            values,
            {"units": "1", "long_name": f"{band} reflectance"},
        )
    ds = xr.Dataset(
        data,
        coords={
            "time": pd.date_range("2024-06-01", periods=nt, freq="5D").values,
            "y": 5_000_000.0 - 30.0 * (np.arange(ny) + 0.5),
            "x": 400_000.0 + 30.0 * (np.arange(nx) + 0.5),
            "platform": ("time", np.array(["sentinel-2a", "landsat-8"] * nt, dtype=object)[:nt]),
        },
    )
    ds = ds.rio.write_crs(f"EPSG:{epsg}")
    for band in bands:
        ds[band].encoding = {"chunks": chunks, "_FillValue": np.float32(np.nan)}
    return ds


def write_synthetic_cube(url: str, **kwargs) -> xr.Dataset:
    """Build a synthetic cube and write it at ``url`` in geoproc's layout
    (`geoproc.zarr_layout`, what cube builds write); returns the Dataset."""
    from geoproc import zarr_layout

    ds = synthetic_cube(**kwargs)
    stored = zarr_layout.with_compressor(zarr_layout.gdal_readable(ds))
    stored.to_zarr(zarr_store(url), mode="w", **zarr_layout.to_zarr_kwargs())
    return ds
