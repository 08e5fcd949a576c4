"""A cube store packed like the cube writer's, written one date at a time (bench and tests).

Why not `geoproc.dev.synthetic_cube.write_synthetic_cube` alone: it builds the whole cube
in memory as float32, and a one-year 1024² cube would not fit a shared machine's memory.
Each date comes from `synthetic_cube` (one date, seeded by its index, so a store extended
later holds the same first dates) and is stored as the cube writer stores it:
int16 reflectance with scale 1e-4 and fill -32768, a uint8 ``fmask`` without CF fill,
``platform`` along time, ``time_complete``, chunks ``(1, 512, 512)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from geoproc.dev.synthetic_cube import synthetic_cube
from geoproc.inference._io import zarr_store

CUBE_CHUNKS = (1, 512, 512)


def write_packed_cube(
    url: str,
    *,
    dates: int,
    ny: int = 1024,
    nx: int = 1024,
    bands: Sequence[str] = ("red", "nir08"),
    chunks: tuple[int, int, int] = CUBE_CHUNKS,
    incomplete: Sequence[int] = (),
    first: int = 0,
    zarr_format: int = 3,
    epsg: int = 32633,
) -> None:
    """Write dates ``first..dates-1`` (``first > 0`` appends to an existing store)."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    chunks = (1, min(chunks[1], ny), min(chunks[2], nx))
    store = zarr_store(url)
    for i in range(first, dates):
        ds = synthetic_cube(1, ny, nx, bands=tuple(bands), seed=1000 + i, epsg=epsg)
        ds = ds.assign_coords(
            time=[np.datetime64("2024-01-01T10:30", "ns") + np.timedelta64(5 * i, "D")],
            platform=("time", np.array(["S30" if i % 2 else "L30"], dtype="<U3")),
        )
        rng = np.random.default_rng(i)
        ds["fmask"] = (("time", "y", "x"), rng.integers(0, 64, (1, ny, nx), dtype=np.uint8))
        ds["time_complete"] = ("time", np.array([i not in set(incomplete)]))
        codecs = {"compressors": [ZstdCodec(level=1), Crc32cCodec()]} if zarr_format == 3 else {}
        encoding = {
            b: {"dtype": "int16", "scale_factor": 1e-4, "add_offset": 0.0,
                "_FillValue": np.int16(-32768), "chunks": chunks, **codecs}
            for b in bands
        }  # fmt: skip
        encoding["fmask"] = {"chunks": chunks, "_FillValue": None, **codecs}
        encoding["time"] = {
            "units": "seconds since 1970-01-01",
            "dtype": "int64",
            "chunks": (4096,),
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if i == 0:
                ds.to_zarr(store, mode="w", encoding=encoding, zarr_format=zarr_format,
                           consolidated=True)  # fmt: skip
            else:
                ds.to_zarr(store, append_dim="time", zarr_format=zarr_format, consolidated=True)


def cube_dates(dates: int) -> pd.DatetimeIndex:
    """The acquisition times `write_packed_cube` gives dates 0..dates-1."""
    return pd.DatetimeIndex(
        [np.datetime64("2024-01-01T10:30", "ns") + np.timedelta64(5 * i, "D") for i in range(dates)]
    )
