"""Point time series: the pixel under each point, every date, long format.

Why long format (point, time, variable, value): it is what pandas, R and spreadsheets
pivot or filter without knowing the store's variables, and a masked observation is simply
an empty value (never filled or interpolated).

Columns: ``point_id``, ``time`` (UTC; the year for canopy stores), ``variable``,
``value`` (decoded: scale/offset applied, NaN where masked), ``x``/``y`` (the point in the
store's CRS, mm), ``row``/``col`` (the pixel read).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from geoproc.errors import UsageError
from geoproc.timeseries.geometries import Points
from geoproc.timeseries.store import SeriesStore

COLUMNS = ("point_id", "time", "variable", "value", "x", "y", "row", "col")


def locate_points(
    store: SeriesStore, points: Points, *, source: str
) -> tuple[Points, np.ndarray, np.ndarray]:
    """(points in the store's CRS, rows, cols); any point outside the store is a UsageError."""
    local = points.to(store.crs)
    row, col, inside = store.pixel_of(local.x, local.y)
    if not inside.all():
        out = [points.ids[i] for i in np.flatnonzero(~inside)]
        raise UsageError(
            f"--points {source}: {len(out)} of {len(points.ids)} point(s) fall outside "
            f"{store.url} ({', '.join(out[:5])}{', ...' if len(out) > 5 else ''}); the store "
            f"covers {store.describe_bounds()}. Drop them or pick the store of their tile."
        )
    return local, row, col


def read_point_series(
    store: SeriesStore, rows: np.ndarray, cols: np.ndarray
) -> dict[str, np.ndarray]:
    """Variable -> values (time, point) decoded (NaN where masked), one read per variable.

    One point is a basic selection (zarr reads one object per time chunk: one per date on
    a cube, one per N dates on a time-chunked copy); several points are one vectorised
    selection (``vindex``), which reads each chunk holding any of them once. Indexing the
    lazily decoded `xarray.Variable` rather than the DataArray skips coordinate work that
    otherwise costs more than reading a time-chunked copy.
    """
    tdim = store.time_dim
    out = {}
    for name, var in store.ds.data_vars.items():
        v = var.variable
        if len(rows) == 1:
            one = v.isel(y=int(rows[0]), x=int(cols[0]))
            arr = np.asarray(one.values).reshape(-1, 1)  # (time or 1, point)
        else:
            picked = v.isel(y=xr.Variable("point", rows), x=xr.Variable("point", cols))
            dims = [d for d in (tdim, "point") if d in picked.dims]
            arr = np.asarray(picked.transpose(*dims).values).reshape(-1, len(rows))
        out[name] = arr
    return out


def extract_points(store: SeriesStore, points: Points, *, source: str) -> pd.DataFrame:
    """The long table of every point's series for every selected variable."""
    local, rows, cols = locate_points(store, points, source=source)
    values = read_point_series(store, rows, cols)
    tdim = store.time_dim
    frames = []
    for name, arr in values.items():
        nt, npt = arr.shape
        times = store.ds[tdim].values if tdim and tdim in store.ds[name].dims else np.array([None])
        by_point = arr.T.reshape(-1)  # point-major: each point's series in time order
        frames.append(
            pd.DataFrame(
                {
                    "point_id": np.repeat(np.asarray(points.ids, dtype=object), nt),
                    "time": np.tile(times, npt),
                    "variable": name,
                    "value": _as_float64(by_point),
                    "x": np.repeat(np.round(local.x, 3), nt),  # mm: reprojection noise off
                    "y": np.repeat(np.round(local.y, 3), nt),
                    "row": np.repeat(rows, nt),
                    "col": np.repeat(cols, nt),
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    point_index = table["point_id"].map({p: i for i, p in enumerate(points.ids)})
    table = table.iloc[np.argsort(point_index.to_numpy(), kind="stable")]
    return table.reset_index(drop=True)[list(COLUMNS)]


def _as_float64(values: np.ndarray) -> np.ndarray:
    """Float64 holding the shortest decimal of each float32 value (0.1234, not 0.12340000271).

    Why: tables mix variables (one float64 column), and CSV readers should see the number
    the store holds; ``float32(result)`` gives back the stored value exactly.
    """
    if values.dtype == np.float32:
        return values.astype(str).astype(np.float64)
    return values.astype(np.float64)
