"""STAC descriptions of Zarr stores: the datacube extension fields and the store asset.

Why: analysts open the cubes and product stores with xarray, and STAC is how they find
them. Each store is described once (not on every date's Item), the way the Planetary
Computer describes its Zarr datasets: the asset carries the Zarr media type and
``xarray:open_kwargs`` (xarray-assets extension v1.0.0), so
``xr.open_dataset(asset.href, **asset.extra_fields["xarray:open_kwargs"])`` works, and
``cube:dimensions`` / ``cube:variables`` (datacube extension v2.3.0) say what is inside
without opening it. Only metadata is read (``xr.open_zarr`` is lazy).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine
from rasterio.crs import CRS

DATACUBE_EXT = "https://stac-extensions.github.io/datacube/v2.3.0/schema.json"
XARRAY_EXT = "https://stac-extensions.github.io/xarray-assets/v1.0.0/schema.json"
ZARR_MEDIA_TYPE = "application/vnd+zarr"
OPEN_KWARGS = {"engine": "zarr", "chunks": {}, "consolidated": True}
"""What `xr.open_dataset` needs for our stores (consolidated metadata is kept current)."""


def zarr_asset(href: str, *, title: str, description: str | None = None) -> dict:
    """A Zarr store asset that xarray opens with the asset's own kwargs."""
    asset = {
        "href": href,
        "type": ZARR_MEDIA_TYPE,
        "roles": ["data"],
        "title": title,
        "xarray:open_kwargs": dict(OPEN_KWARGS),
    }
    if description:
        asset["description"] = description
    return asset


def cube_fields(ds: xr.Dataset, *, crs: CRS, transform: Affine) -> dict:
    """``cube:dimensions`` and ``cube:variables`` of a (time|year, y, x) store."""
    epsg = crs.to_epsg()
    reference = epsg if epsg else crs.to_wkt()
    x = np.asarray(ds["x"].values, dtype="float64")
    y = np.asarray(ds["y"].values, dtype="float64")
    dims: dict = {
        "x": {
            "type": "spatial",
            "axis": "x",
            "extent": [
                float(x.min() - abs(transform.a) / 2),
                float(x.max() + abs(transform.a) / 2),
            ],
            "step": float(transform.a),
            "reference_system": reference,
        },
        "y": {
            "type": "spatial",
            "axis": "y",
            "extent": [
                float(y.min() - abs(transform.e) / 2),
                float(y.max() + abs(transform.e) / 2),
            ],
            "step": float(transform.e),
            "reference_system": reference,
        },
    }
    for name in ds.dims:
        if name in ("x", "y"):
            continue
        values = ds[name].values if name in ds.coords else np.arange(ds.sizes[name])
        if np.issubdtype(np.asarray(values).dtype, np.datetime64):
            stamps = [_iso(v) for v in values]
        elif name == "year":
            stamps = [f"{int(v):04d}-01-01T00:00:00Z" for v in values]
        else:
            dims[name] = {"type": str(name), "values": [np.asarray(v).item() for v in values]}
            continue
        dims[name] = {
            "type": "temporal",
            "extent": [min(stamps), max(stamps)] if stamps else [None, None],
            "values": stamps,
        }
        if name == "year":
            dims[name]["step"] = "P1Y"
    variables = {}
    for name, var in ds.data_vars.items():
        entry: dict = {
            "dimensions": list(var.dims),
            "type": "data" if var.dims[-2:] == ("y", "x") else "auxiliary",
        }
        if var.attrs.get("long_name"):
            entry["description"] = str(var.attrs["long_name"])
        if var.attrs.get("units"):
            entry["unit"] = str(var.attrs["units"])
        variables[name] = entry
    return {"cube:dimensions": dims, "cube:variables": variables}


def time_range(ds: xr.Dataset) -> tuple[str | None, str | None]:
    """First and last instant of the store's time axis (ISO 8601, UTC)."""
    if "time" not in ds.coords or ds.sizes.get("time", 0) == 0:
        return None, None
    values = ds["time"].values
    return _iso(values.min()), _iso(values.max())


def _iso(value: object) -> str:
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")
