"""Zonal statistics: per polygon, date and variable, over the pixels the polygon covers.

Which pixels: those whose *centre* lies inside the polygon (`rasterio.features.geometry_mask`
with ``all_touched=False``, GDAL's default rasterisation rule). Pixels the boundary only
touches are left out, so two polygons sharing an edge never count a pixel twice and a
polygon's count does not grow with its perimeter. Masked pixels (NaN) are counted apart
and never enter the statistics; ``std`` is the population standard deviation (ddof=0).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from geoproc.errors import UsageError
from geoproc.timeseries.geometries import Polygons
from geoproc.timeseries.store import SeriesStore

COLUMNS = (
    "polygon_id", "time", "variable", "mean", "median", "std", "count_valid", "count_masked",
)  # fmt: skip
ALL_TOUCHED = False
_BATCH_BYTES = 256 * 2**20
"""Values read at once per polygon (dates x its bounding box): bounds memory for big zones."""


def polygon_masks(
    store: SeriesStore, polygons: Polygons, *, source: str
) -> list[tuple[slice, slice, np.ndarray]]:
    """(row slice, col slice, inside mask) of each polygon's bounding window in the store.

    A polygon wholly outside the store is a `UsageError` naming the file and the bounds.
    """
    from affine import Affine
    from rasterio.features import geometry_mask

    # densify lon/lat edges to ~50 m before reprojecting (pixels are 10-30 m)
    local = polygons.to(store.crs, max_segment=0.0005)
    ny, nx = store.shape
    sx0, sy0, sx1, sy1 = store.bounds
    out, outside = [], []
    for pid, geom in zip(polygons.ids, local.geoms, strict=True):
        x0, y0, x1, y1 = geom.bounds
        if x1 <= sx0 or x0 >= sx1 or y1 <= sy0 or y0 >= sy1:
            outside.append(pid)
            continue
        t = store.transform  # north-up: window offsets by plain arithmetic
        cols = sorted(((x0 - t.c) / t.a, (x1 - t.c) / t.a))
        rows = sorted(((y1 - t.f) / t.e, (y0 - t.f) / t.e))
        r0, c0 = max(0, int(np.floor(rows[0]))), max(0, int(np.floor(cols[0])))
        r1, c1 = min(ny, int(np.ceil(rows[1]))), min(nx, int(np.ceil(cols[1])))
        h, w = max(1, r1 - r0), max(1, c1 - c0)
        mask = geometry_mask(
            [geom], out_shape=(h, w), all_touched=ALL_TOUCHED, invert=True,
            transform=Affine(t.a, 0.0, t.c + c0 * t.a, 0.0, t.e, t.f + r0 * t.e),
        )  # fmt: skip
        out.append((slice(r0, r0 + h), slice(c0, c0 + w), mask))
    if outside:
        raise UsageError(
            f"--polygons {source}: {len(outside)} polygon(s) lie wholly outside {store.url} "
            f"({', '.join(outside[:5])}{', ...' if len(outside) > 5 else ''}); the store "
            f"covers {store.describe_bounds()}. Drop them or pick the store of their tile."
        )
    return out


def zonal_statistics(store: SeriesStore, polygons: Polygons, *, source: str) -> pd.DataFrame:
    """The long table of statistics per polygon, date and variable."""
    masks = polygon_masks(store, polygons, source=source)
    tdim = store.time_dim
    rows = []
    for pid, (ys, xs, mask) in zip(polygons.ids, masks, strict=True):
        for name, var in store.ds.data_vars.items():
            has_t = tdim is not None and tdim in var.dims
            times = store.ds[tdim].values if has_t else np.array([None])
            block = var.isel(y=ys, x=xs)
            per_date = max(1, int(mask.size) * 8)
            step = max(1, _BATCH_BYTES // per_date)
            for t0 in range(0, len(times), step):
                sub = block.isel({tdim: slice(t0, t0 + step)}) if has_t else block
                values = np.asarray(sub.transpose(*((tdim,) if has_t else ()), "y", "x").values)
                values = values.reshape(-1, *mask.shape)[:, mask].astype(np.float64)
                for t, stats in zip(times[t0 : t0 + step], _stats(values), strict=True):
                    rows.append((pid, t, name, *stats))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _stats(values: np.ndarray) -> list[tuple[float, float, float, int, int]]:
    """(mean, median, std, valid, masked) per row of a (dates, pixels) array."""
    valid = np.isfinite(values)
    count = valid.sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-masked dates give NaN, as wanted
        mean = np.nanmean(values, axis=1)
        median = np.nanmedian(values, axis=1)
        std = np.nanstd(values, axis=1)
    n = values.shape[1]
    return [
        (float(mean[i]), float(median[i]), float(std[i]), int(count[i]), int(n - count[i]))
        for i in range(values.shape[0])
    ]
