"""Small cube-like stores for the time-series tests (packed as the cube writer packs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer

NY, NX, DATES = 70, 90, 6
X0, Y0, RES = 400_000.0, 5_000_000.0, 30.0
"""The synthetic grid: upper-left pixel edge and pixel size (EPSG:32633)."""


@pytest.fixture(scope="session")
def _cube_once(tmp_path_factory) -> Path:
    from geoproc.dev.bench._timeseries_cube import write_packed_cube

    path = tmp_path_factory.mktemp("ts") / "T1.zarr"
    write_packed_cube(str(path), dates=DATES, ny=NY, nx=NX, chunks=(1, 32, 32), incomplete=(2,))
    return path


@pytest.fixture
def cube(_cube_once, tmp_path) -> Path:
    """A 6-date cube store, date 2 incomplete, chunks (1, 32, 32), Zarr v3 like the cube writer."""
    import shutil

    path = tmp_path / "cubes" / "T1.zarr"
    shutil.copytree(_cube_once, path)
    return path


def to_lonlat(x, y):
    return Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(x, y)


def write_geojson(path: Path, geoms: dict[str, dict]) -> Path:
    feats = [
        {"type": "Feature", "id": k, "properties": {}, "geometry": g} for k, g in geoms.items()
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def stored(cube: Path, name: str) -> np.ndarray:
    """The variable's decoded values of the complete dates, read with zarr (not geoproc)."""
    import zarr

    g = zarr.open_group(str(cube), mode="r")
    keep = np.flatnonzero(g["time_complete"][:])
    raw = g[name].oindex[keep]
    if name == "fmask":
        return raw.astype(np.float64)
    out = raw.astype(np.float64) * 1e-4
    out[raw == -32768] = np.nan
    return out
