"""Find the product stores of a run and cut them into the 2-D slices that get published.

Publishing reads the stores exactly as analysts do (``xr.open_zarr`` through
`geoproc.storage`), but with ``mask_and_scale=False`` so the COGs carry the stored values
(packed integers and their fill value) bit for bit; scale, offset and nodata travel as
metadata instead of being applied. Layout read: ``{out}/products/{product}/{tile}.zarr``
with dims ``(time|year, y, x)`` or ``(y, x)`` and a rioxarray ``spatial_ref`` coordinate
(DESIGN.md, "Store conventions").
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine
from rasterio.crs import CRS

from geoproc import storage
from geoproc.errors import NoDataError, StoreError, UnknownNameError

STATIC_LABEL = "static"
"""Date label of a product without a time-like dimension."""


@dataclass(frozen=True)
class ProductStore:
    """One opened product store of one processing tile."""

    product: str
    tile: str
    url: str
    """The store URL (local path or s3://...)."""
    dataset: xr.Dataset
    """Opened lazily with ``mask_and_scale=False`` (raw stored values)."""

    @property
    def crs(self) -> CRS:
        return store_crs(self.dataset, self.url)

    @property
    def transform(self) -> Affine:
        return grid_transform(self.dataset, self.url)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.dataset.sizes["y"]), int(self.dataset.sizes["x"])

    @property
    def step_dim(self) -> str | None:
        """The time-like dimension (``time``, ``year``...), or None for a single map."""
        dims = [d for d in self.variables_dims() if d not in ("y", "x")]
        return dims[0] if dims else None

    def variables(self) -> list[str]:
        """Published variables: every data variable on the (.., y, x) grid."""
        return [
            name
            for name, var in self.dataset.data_vars.items()
            if var.dims[-2:] == ("y", "x") and var.ndim in (2, 3)
        ]

    def variables_dims(self) -> tuple[str, ...]:
        names = self.variables()
        if not names:
            raise StoreError(
                f"Product store {self.url} has no variable on (y, x): rebuild the product store."
            )
        return self.dataset[names[0]].dims

    def steps(self) -> list[tuple[str, int | None]]:
        """(date label, position along the time dimension) of each complete step, in order.

        Steps a ``time_complete`` flag marks unfinished are left out (published by the
        rerun that completes them). Two steps on one day (e.g. two platforms) get the
        platform, or their position, appended so each has its own label.
        """
        dim = self.step_dim
        if dim is None:
            return [(_static_label(self.dataset.attrs), None)]
        values = list(self.dataset[dim].values)
        original = [date_label(v) for v in values]
        labels = list(original)
        if len(set(labels)) < len(labels):
            platform = self.dataset.get("platform")
            for i, label in enumerate(original):
                if original.count(label) > 1:
                    suffix = str(platform.values[i]) if platform is not None else str(i)
                    suffix = re.sub(r"[^A-Za-z0-9.-]+", "-", suffix)
                    labels[i] = f"{label}-{suffix}"
        complete = self.dataset.get("time_complete")
        keep = (
            [bool(v) for v in complete.values]
            if complete is not None and complete.dims == (dim,)
            else [True] * len(values)
        )
        return [(label, i) for i, (label, ok) in enumerate(zip(labels, keep, strict=True)) if ok]

    def slice(self, variable: str, position: int | None) -> xr.DataArray:
        """The 2-D (y, x) array of one variable at one step position (values as stored)."""
        da = self.dataset[variable]
        dim = self.step_dim
        if dim is not None and dim in da.dims and position is not None:
            da = da.isel({dim: position})
        return da

    def source_items(self, label: str, position: int | None) -> list[str]:
        """Source item ids or hrefs recorded for one step (empty when none are recorded).

        Read from a ``source_items`` variable along time, else the store attribute
        ``source_items``/``geoproc:source_items`` (a list aligned with time, or a mapping
        date label -> ids), else the same attribute of the cube named by ``source_cube``.
        """
        ds = self.dataset
        dim = self.step_dim
        if dim is None or position is None:
            return []
        if "source_items" in ds.variables and ds["source_items"].dims == (dim,):
            return _as_list(ds["source_items"].isel({dim: position}).values.tolist())
        times = list(ds[dim].values)
        index = position
        for source in ("store", "cube"):
            attrs = ds.attrs if source == "store" else self._cube_attrs
            for key in ("source_items", "geoproc:source_items"):
                if key in attrs:
                    found = _pick(attrs[key], label, index, len(times))
                    if found is not None:
                        return found
        return []

    @cached_property
    def _cube_attrs(self) -> dict:
        url = self.dataset.attrs.get("source_cube")
        if not isinstance(url, str) or not url:
            return {}
        try:
            import zarr

            return dict(zarr.open_group(storage.zarr_store(url, read_only=True), mode="r").attrs)
        except Exception:  # the cube may be gone; provenance then stays in the store attrs
            return {}


def _pick(raw: object, label: str, index: int, n_steps: int) -> list[str] | None:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return _as_list(raw)
    if isinstance(raw, dict):
        return _as_list(raw.get(label, raw.get(label[:10], [])))
    if isinstance(raw, list) and len(raw) == n_steps:
        return _as_list(raw[index])
    return None


def date_label(value: object) -> str:
    """A path-safe label for a step: ``YYYY-MM-DD`` for dates, the integer for years."""
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (np.floating, float)) and float(value).is_integer():
        return str(int(value))
    ts = pd.Timestamp(value)
    if ts.hour or ts.minute or ts.second:
        return ts.strftime("%Y-%m-%dT%H%M%S")
    return ts.strftime("%Y-%m-%d")


def step_interval(label: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Start and end instants a label stands for: a day, a whole year or a START_END period."""
    if label == STATIC_LABEL:
        return None, None
    if label.isdigit():
        year = int(label)
        return pd.Timestamp(year=year, month=1, day=1, tz="UTC"), pd.Timestamp(
            year=year, month=12, day=31, hour=23, minute=59, second=59, tz="UTC"
        )
    period = _PERIOD.fullmatch(label)
    if period:
        last_day = step_interval(period[2])[1]
        return step_interval(period[1])[0], last_day + pd.Timedelta(days=1, seconds=-1)
    m = _DAY.match(label)
    if not m:
        return None, None
    ts = pd.Timestamp(m[1], tz="UTC")
    if m[2]:
        ts = ts + pd.Timedelta(hours=int(m[2]), minutes=int(m[3]), seconds=int(m[4]))
    return ts, ts


_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T(\d{2})(\d{2})(\d{2}))?")
_PERIOD = re.compile(r"(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})")


def _static_label(attrs: dict) -> str:
    """Label of a map without a time dimension, from CF/ACDD attributes when present."""
    year = attrs.get("year")
    if isinstance(year, (int, np.integer)) or (isinstance(year, str) and year.isdigit()):
        return str(int(year))
    start, end = attrs.get("time_coverage_start"), attrs.get("time_coverage_end")
    if start and end:
        first, last = date_label(start), date_label(end)
        return first if first == last else f"{first}_{last}"
    return STATIC_LABEL


def find_product_stores(out_url: str, *, products: list[str] | None = None) -> list[ProductStore]:
    """Every ``{out}/products/{product}/{tile}.zarr`` (optionally only some products)."""
    root = storage.parse_url(out_url).join("products")
    fs, base = storage.filesystem(root)
    found: dict[str, list[str]] = {}
    if fs.exists(base):
        for entry in sorted(fs.ls(base, detail=False)):
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith(".") or not fs.isdir(entry):
                continue
            tiles = sorted(
                e.rstrip("/").rsplit("/", 1)[-1][: -len(".zarr")]
                for e in fs.ls(entry, detail=False)
                if e.rstrip("/").endswith(".zarr")
            )
            if tiles:
                found[name] = tiles
    if products:
        unknown = sorted(set(products) - set(found))
        if unknown:
            have = ", ".join(sorted(found)) or "none"
            raise UnknownNameError(
                f"No product stores for {', '.join(unknown)} under {root.url}: pass --products "
                f"from those present ({have}) or run the pipeline for them first."
            )
    selected = [p for p in sorted(found) if not products or p in products]
    if not selected:
        raise NoDataError(
            f"No product stores found under {root.url} (expected products/PRODUCT/TILE.zarr): "
            "check --out or run the pipeline first."
        )
    return [
        open_product_store(root.join(product, f"{tile}.zarr").url, product=product, tile=tile)
        for product in selected
        for tile in found[product]
    ]


def open_product_store(url: str, *, product: str, tile: str) -> ProductStore:
    """Open one store lazily with raw (unscaled, unmasked) values."""
    try:
        ds = xr.open_zarr(
            storage.zarr_store(url, read_only=True),
            mask_and_scale=False,
            decode_times=True,
            consolidated=None,
        )
    except Exception as exc:  # zarr raises many kinds for an unreadable store
        raise StoreError(
            f"Cannot open product store {url} ({type(exc).__name__}: {exc}): rerun the product "
            "step for this tile or remove the broken store."
        ) from exc
    return ProductStore(product=product, tile=tile, url=url, dataset=ds)


def store_crs(ds: xr.Dataset, url: str) -> CRS:
    ref = ds.coords.get("spatial_ref")
    if ref is None:
        for var in ds.data_vars.values():
            gm = var.attrs.get("grid_mapping")
            if gm and gm in ds.variables:
                ref = ds[gm]
                break
    if ref is not None:
        for key in ("crs_wkt", "spatial_ref"):
            if key in ref.attrs:
                return CRS.from_wkt(ref.attrs[key])
    raise StoreError(
        f"Product store {url} has no CRS (no spatial_ref coordinate with crs_wkt): write it with "
        "rioxarray (`ds.rio.write_crs`) when building the store."
    )


def grid_transform(ds: xr.Dataset, url: str) -> Affine:
    x = np.asarray(ds["x"].values, dtype="float64")
    y = np.asarray(ds["y"].values, dtype="float64")
    if x.size < 2 or y.size < 2:
        raise StoreError(f"Product store {url} is smaller than 2x2 pixels: nothing to publish.")
    dx = (x[-1] - x[0]) / (x.size - 1)
    dy = (y[-1] - y[0]) / (y.size - 1)
    if not (math.isfinite(dx) and math.isfinite(dy)) or dx == 0 or dy == 0:
        raise StoreError(f"Product store {url} has degenerate x/y coordinates.")
    return Affine(dx, 0.0, x[0] - dx / 2, 0.0, dy, y[0] - dy / 2)


def _as_list(raw: object) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, (bytes, str)):
        text = raw.decode() if isinstance(raw, bytes) else raw
        text = text.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                return _as_list(json.loads(text))
            except ValueError:
                pass
        return [t for t in (p.strip() for p in text.split(",")) if t]
    if isinstance(raw, dict):
        return _as_list(raw.get("href") or raw.get("id"))
    if isinstance(raw, (list, tuple, np.ndarray)):
        out: list[str] = []
        for r in raw:
            out.extend(_as_list(r))
        return out
    return [str(raw)]
