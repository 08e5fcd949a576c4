"""The synthetic time-series grid and small readers/writers around it (no test functions here).

The time-series tests build GeoJSON in lon/lat from known grid coordinates and compare the
extractor's answers with values read straight from the store with zarr (not geoproc).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pyproj import Transformer

NY, NX, DATES = 70, 90, 6
X0, Y0, RES = 400_000.0, 5_000_000.0, 30.0
"""The synthetic grid: upper-left pixel edge and pixel size (EPSG:32633)."""


def to_lonlat(x, y):
    """Grid coordinates (EPSG:32633) to lon/lat, as GeoJSON wants them."""
    return Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(x, y)


def write_geojson(path: Path, geoms: dict[str, dict]) -> Path:
    """A FeatureCollection with one feature per `geoms` entry, its key as the feature id."""
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
