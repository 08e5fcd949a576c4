"""Assemble one tile's time steps: read, mask, scale, harmonise and mosaic onto the tile grid.

Cube contract (products and the inference engine rely on it; ``geoproc.cube.store`` writes it):

* ``xr.open_zarr(f"{out}/cubes/{tile}.zarr")`` gives dims ``(time, y, x)``; coords ``time``
  (datetime64, earliest acquisition of the solar-day scene, whole seconds), ``y``/``x``
  (pixel centres in UTM metres; y descending), ``spatial_ref`` (CRS WKT + GeoTransform),
  and along time ``platform`` (str: ``L30``, ``S30``, ``S2``, ``S1``).
* ``time_complete`` (bool along time): a step is True only after every chunk of every
  variable of that step is written. Readers must use ``ds.sel(time=ds.time_complete)``;
  chunks of incomplete steps read as NaN / fill.
* Data variables by STAC common name (``coastal, blue, green, red, rededge1..3, nir,
  nir08, nir09, cirrus, swir16, swir22, lwir11, lwir12, vv, vh``) decode to float with
  NaN wherever the pixel is masked (QA), fill, unreadable, or not observed by the platform
  of that step (e.g. ``vv`` at optical steps, ``nir`` at L30 steps: Landsat's NIR is
  ``nir08``). Reflectance is packed int16 (scale 1e-4, exact for HLS and S2 digital
  numbers), ``lwir11/lwir12`` int16 kelvin (scale 0.01, offset 273.15: exact for HLS
  degC x 100), ``vv/vh`` float32 linear power (or dB when asked).
* ``fmask`` (uint8, raw HLS Fmask bits, 255 fill) for HLS steps, ``scl`` (uint8, S2 scene
  classes, 0 no data) for S2 steps: the QA of the granule that supplied each pixel, or of
  the first granule that observed it when none was clear.
* ``atmos_{transmittance,upwelling,downwelling}_lwir11/_lwir12`` and ``atmos_water_vapour``
  (1-D along time, NaN where absent) from the L30 item property ``geoproc:atmosphere``.

Method: HLS v2.0 user guide (Masek et al. 2021; Fmask bits 1 cloud, 2 adjacent, 3 shadow,
4 snow/ice, 5 water, 6-7 aerosol level - a two-bit field, never a flag), Sentinel-2 L2A
product specification (SCL classes; BOA_ADD_OFFSET of -1000 from processing baseline
04.00, ESA 2022), Sentinel-1 RTC (linear gamma0; dB = 10 log10). Reads go through GDAL
warped VRTs straight onto the tile grid (nearest neighbour by default, so QA bits and
packed numbers stay exact). We read with rasterio rather than stackstac because a failed
asset must be named in the run record and multi-band assets (band descriptions) must be
addressable; `geoproc bench cube` measures this against stackstac and odc-stac.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlparse

import dask
import dask.array as da
import numpy as np
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from geoproc.catalog.search import CATALOG_KEY, TimeStep
from geoproc.catalog.sensors import (
    DEFAULT_FMASK_MASKED,
    DEFAULT_SCL_MASKED,
    FMASK_BITS,
    S2_BOA_ADD_OFFSET,
    S2_OFFSET_BASELINE,
    BandProfile,
    SensorProfile,
    profile_for,
)
from geoproc.errors import EndpointUnavailableError, UnknownNameError, UntrustedHrefError
from geoproc.grid import Tile
from geoproc.href_policy import check_href, policy_for

log = logging.getLogger(__name__)

BAND_ORDER = (
    "coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08",
    "nir09", "cirrus", "swir16", "swir22", "lwir11", "lwir12", "vv", "vh",
)  # fmt: skip
ATMOS_VARIABLES = tuple(
    f"atmos_{q}_{b}"
    for b in ("lwir11", "lwir12")
    for q in ("transmittance", "upwelling", "downwelling")
) + ("atmos_water_vapour",)
_ATMOS_KEYS = {
    "transmittance": "transmittance",
    "upwelling": "upwelling_radiance",
    "downwelling": "downwelling_radiance",
}
_TRANSIENT = (
    "timed out",
    "timeout",
    "connection",
    "temporar",
    " 429",
    " 500",
    " 502",
    " 503",
    " 504",
    "reset by peer",
    "recv failure",
    "send failure",
    "couldn't connect",
    "could not connect",
    "connection refused",
    "response code: 429",
    "response code: 5",
    "response_code=5",
    "slowdown",
    "slow down",
)
# GDAL's own HTTP retries (cpl_http, GDAL >= 3.10 docs "Configuration options": 429, 500,
# 502, 503, 504 and connection resets are retried with exponential back-off from
# GDAL_HTTP_RETRY_DELAY) absorb most transient faults inside one read; the timeouts bound
# a server that hangs.
GDAL_ENV = {
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    "GDAL_HTTP_RETRY_CODES": "429,500,502,503,504",
    "GDAL_HTTP_TIMEOUT": "60",
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff",
}


@dataclass(frozen=True)
class CubeOptions:
    """How to turn granules into cube values."""

    fmask_masked: tuple[str, ...] = DEFAULT_FMASK_MASKED
    """Fmask flags that mask a pixel (any of cirrus, cloud, adjacent_cloud, cloud_shadow, snow_ice, water)."""
    scl_masked: tuple[int, ...] = DEFAULT_SCL_MASKED
    """SCL classes that mask a pixel (default: no data, defective, shadow, clouds, cirrus)."""
    sar_db: bool = False
    """Store vv/vh in decibels instead of linear power."""
    resampling: str = "nearest"
    """GDAL resampling onto the tile grid for data bands (QA always uses nearest)."""
    bands: tuple[str, ...] | None = None
    """Common band names to keep; None keeps every band of the requested collections."""
    read_retries: int = 3
    """Extra attempts for reads that fail with a transient error (timeouts, HTTP 5xx)."""

    def __post_init__(self) -> None:
        unknown = set(self.fmask_masked) - set(FMASK_BITS)
        if unknown:
            raise UnknownNameError(
                f"Unknown Fmask flag(s) {sorted(unknown)}: use any of {', '.join(FMASK_BITS)}."
            )
        if self.resampling not in Resampling.__members__:
            raise UnknownNameError(
                f"Unknown resampling {self.resampling!r}: use nearest, bilinear, average, ..."
            )

    def to_attrs(self) -> dict:
        return {
            "fmask_masked": list(self.fmask_masked),
            "scl_masked": list(self.scl_masked),
            "sar_db": self.sar_db,
            "resampling": self.resampling,
        }


@dataclass
class StepData:
    """One assembled time step: physical values (NaN masked) plus the QA layer."""

    bands: dict[str, np.ndarray]
    qa: dict[str, np.ndarray]
    atmosphere: dict[str, float]
    errors: list[dict] = field(default_factory=list)


def cube_band_names(collections: Sequence[str], options: CubeOptions) -> list[str]:
    """Variables a cube of these collections holds, in the canonical order."""
    names = {b.name for c in collections for b in profile_for(c).bands}
    if options.bands is not None:
        unknown = set(options.bands) - names
        if unknown:
            raise UnknownNameError(
                f"--bands {sorted(unknown)} not in the collections: choose from {sorted(names)}."
            )
        names = set(options.bands)
    return [n for n in BAND_ORDER if n in names] + sorted(names - set(BAND_ORDER))


def qa_names(collections: Sequence[str]) -> list[str]:
    kinds = {profile_for(c).qa.kind for c in collections if profile_for(c).qa}
    return [n for k, n in (("fmask_bits", "fmask"), ("scl_classes", "scl")) if k in kinds]


def read_step(
    step: TimeStep, tile: Tile, band_names: Sequence[str], options: CubeOptions
) -> StepData:
    """Read and mosaic every granule of one step onto the tile grid (first valid pixel wins)."""
    profile = profile_for(step.collection)
    shape = tile.shape
    wanted = [b for b in profile.bands if b.name in band_names]
    out = {b.name: np.full(shape, np.nan, np.float32) for b in wanted}
    taken = np.zeros(shape, bool)
    qa_name = (
        {"fmask_bits": "fmask", "scl_classes": "scl"}.get(profile.qa.kind) if profile.qa else None
    )
    qa_out = qa_first = None
    if profile.qa:
        qa_out = np.full(shape, profile.qa.nodata, np.uint8)
        qa_first = qa_out.copy()
    errors: list[dict] = []
    with rasterio.Env(**GDAL_ENV):
        for item in step.items:
            clear = np.ones(shape, bool)
            if profile.qa:
                q = _read_or_record(
                    item, profile.qa.asset, tile, "nearest", profile.qa.nodata, options, errors
                )
                if q is None:
                    continue  # without QA we cannot tell clouds from ground: the granule adds nothing
                raw, qfill = q
                bad = (
                    (raw == qfill) | (raw < 0) | (raw > 255)
                    if qfill is not None
                    else (raw < 0) | (raw > 255)
                )
                q = np.where(bad, profile.qa.nodata, raw).astype(np.uint8)
                observed = q != profile.qa.nodata
                clear = observed & ~_qa_masked(q, profile, options)
                first = (qa_first == profile.qa.nodata) & observed
                qa_first[first] = q[first]
            values = {}
            any_valid = np.zeros(shape, bool)
            for band in wanted:
                v = _read_band(item, band, profile, tile, options, errors)
                if v is not None:
                    values[band.name] = v
                    any_valid |= np.isfinite(v)
            take = clear & any_valid & ~taken
            for name, v in values.items():
                out[name][take] = v[take]
            if profile.qa:
                qa_out[take] = q[take]
            taken |= take
    qa = {}
    if profile.qa:
        qa[qa_name] = np.where(taken, qa_out, qa_first)
    return StepData(out, qa, atmosphere_of(step), errors)


def _qa_masked(q: np.ndarray, profile: SensorProfile, options: CubeOptions) -> np.ndarray:
    if profile.qa.kind == "fmask_bits":
        bits = 0
        for name in options.fmask_masked:
            bits |= 1 << FMASK_BITS[name]
        return (q & np.uint8(bits)) != 0
    return np.isin(q, np.asarray(options.scl_masked, np.uint8))


def _read_band(item, band: BandProfile, profile, tile, options, errors) -> np.ndarray | None:
    located = _locate(item, band.asset)
    if located is None:
        errors.append({"item": item["id"], "asset": band.asset, "error": "asset missing from item"})
        return None
    got = _read_or_record(item, band.asset, tile, options.resampling, band.nodata, options, errors)
    if got is None:
        return None
    dn, nodata = got
    valid = np.isfinite(dn) if nodata is None else (dn != nodata) & np.isfinite(dn)
    scale, offset = _scale_offset(item, band, profile, located[2])
    value = dn.astype(np.float64) * scale + offset
    if profile.family == "sar":
        valid &= value > 0
        if options.sar_db:
            value = 10.0 * np.log10(np.where(valid, value, 1.0))
    return np.where(valid, value, np.nan).astype(np.float32)


def _scale_offset(
    item, band: BandProfile, profile: SensorProfile, asset: dict
) -> tuple[float, float]:
    """Scale/offset: the profile's, with the S2 L2A BOA offset where the item says so."""
    if profile.platform_group != "S2":
        return band.scale, band.offset
    rb = asset.get("raster:bands") or []
    idx = asset.get("_geoproc_bidx", 1) - 1
    if len(rb) > idx and ("offset" in rb[idx] or "scale" in rb[idx]):
        return float(rb[idx].get("scale", band.scale)), float(rb[idx].get("offset", 0.0))
    baseline = str(item.get("properties", {}).get("s2:processing_baseline", ""))
    if baseline and _baseline_tuple(baseline) >= _baseline_tuple(S2_OFFSET_BASELINE):
        return band.scale, S2_BOA_ADD_OFFSET * band.scale
    return band.scale, band.offset


def _baseline_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        return (0,)


def _locate(item: dict, key: str) -> tuple[str, int, dict] | None:
    """(href, 1-based band index, asset) of an asset key: by key, case-insensitively, or by band name."""
    assets = item.get("assets", {})
    for k, a in assets.items():
        if k == key or k.lower() == key.lower():
            return a["href"], 1, a
    for a in assets.values():
        for i, b in enumerate(a.get("eo:bands") or a.get("bands") or []):
            if b.get("name") == key:
                return a["href"], i + 1, {**a, "_geoproc_bidx": i + 1}
    return None


def _read_or_record(item, key, tile, resampling, nodata, options, errors):
    """(array, fill value) read onto the tile grid, or None after recording why not.

    Three outcomes, never a silent guess: the values; None with the reason recorded (asset
    missing, 404, corrupt file, href refused by the policy: the pixels stay masked); or
    `EndpointUnavailableError` when the server keeps failing with transient errors after
    every retry - masking those would publish a cube that depends on the network's mood.
    """
    located = _locate(item, key)
    if located is None:
        errors.append({"item": item["id"], "asset": key, "error": "asset missing from item"})
        return None
    href, bidx, _ = located
    try:
        check_href(href, policy_for(item.get(CATALOG_KEY, "")))
    except UntrustedHrefError as exc:
        log.warning("asset %s of %s refused: %s", key, item["id"], exc)
        errors.append({"item": item["id"], "asset": key, "href": href, "error": str(exc)})
        return None
    for attempt in range(options.read_retries + 1):
        try:
            # GDAL caches a failed HTTP open; a retry must not be answered from that cache.
            with rasterio.Env(CPL_VSIL_CURL_NON_CACHED=_vsi_prefix(href)) if attempt else _NULL:
                return _warp_read(href, bidx, tile, resampling, nodata)
        except (rasterio.errors.RasterioError, OSError, ValueError) as exc:
            message = str(exc)
            if not is_transient_message(message):
                log.warning("asset %s of %s unreadable, masked: %s", key, item["id"], message)
                errors.append({"item": item["id"], "asset": key, "href": href, "error": message})
                return None
            if attempt < options.read_retries:
                _time.sleep(min(2**attempt, 8))
                continue
            raise EndpointUnavailableError(
                f"{endpoint_of(href)} kept failing while reading asset {key} of item "
                f"{item['id']} ({message.strip()[:200]}) after {options.read_retries + 1} "
                "attempts: check that the server is up, or rerun later (finished steps are kept)."
            ) from None
    return None


_NULL = contextlib.nullcontext()


def is_transient_message(message: str) -> bool:
    """True for errors a later attempt can fix: timeouts, resets, throttling, HTTP 5xx."""
    lower = message.lower()
    return any(t in lower for t in _TRANSIENT)


def endpoint_of(href: str) -> str:
    """`scheme://host[:port]` of an href (what a user can check), or the href's folder."""
    parsed = urlparse(href)
    if parsed.scheme and parsed.netloc:
        return f"{parsed.scheme}://{parsed.netloc.rsplit('@', 1)[-1]}"
    return href.rsplit("/", 1)[0] or href


def _vsi_prefix(href: str) -> str:
    if href.startswith(("http://", "https://")):
        return f"/vsicurl/{href}"
    if href.startswith("s3://"):
        return f"/vsis3/{href[5:]}"
    return href


def _warp_read(
    href: str, bidx: int, tile: Tile, resampling: str, nodata
) -> tuple[np.ndarray, float]:
    with rasterio.open(href) as src:
        src_nodata = src.nodata if src.nodata is not None else nodata
        dtype = src.dtypes[bidx - 1]
        fill = (
            src_nodata if src_nodata is not None else (np.nan if np.dtype(dtype).kind == "f" else 0)
        )
        if resampling == "nearest" and src.crs is not None:
            # Nearest neighbour by an exact per-pixel index map (cached per source grid and
            # tile, so the 10+ bands of a granule and its repeat passes share it): one
            # windowed read of the source, no GDAL warper set-up per asset.
            pmap = _pixel_map(src.crs.to_wkt(), tuple(src.transform)[:6], src.shape, tile)
            out = np.full(tile.shape, fill, dtype=dtype)
            if pmap is not None:
                (r0, c0, r1, c1), dst, src_index = pmap
                block = src.read(bidx, window=rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0))
                if isinstance(dst, tuple):  # same grid, pure shift: a slice copy
                    out[dst] = block
                else:
                    out.ravel()[dst] = block.ravel()[src_index]
            return out, fill
        with WarpedVRT(
            src,
            crs=tile.crs,
            transform=tile.transform,
            width=tile.tile_size_px,
            height=tile.tile_size_px,
            resampling=Resampling[resampling],
            src_nodata=src_nodata,
            nodata=fill,
            tolerance=1e-6,  # near-exact transform: the default 0.125 px approximation moves pixels
        ) as vrt:
            return vrt.read(bidx), fill


@functools.lru_cache(maxsize=8)
def _pixel_map(src_wkt: str, src_transform: tuple, src_shape: tuple, tile: Tile):
    """Source (row, col) of every tile pixel centre, the in-source mask and the read window."""
    transformer = Transformer.from_crs(tile.epsg, CRS.from_wkt(src_wkt), always_xy=True)
    xs, ys = np.meshgrid(tile.x_coords, tile.y_coords)
    sx, sy = transformer.transform(xs, ys)
    inverse = ~Affine(*src_transform)
    colf, rowf = inverse * (sx, sy)
    rows = np.floor(rowf).astype(np.int64)
    cols = np.floor(colf).astype(np.int64)
    inside = (rows >= 0) & (cols >= 0) & (rows < src_shape[0]) & (cols < src_shape[1])
    inside &= np.isfinite(rowf) & np.isfinite(colf)
    if not inside.any():
        return None
    r, c = rows[inside], cols[inside]
    window = (int(r.min()), int(c.min()), int(r.max()) + 1, int(c.max()) + 1)
    r0, c0, r1, c1 = window
    ti, tj = np.nonzero(inside)
    if (
        np.array_equal(r - r0, ti - ti.min())
        and np.array_equal(c - c0, tj - tj.min())
        and ti.size == (r1 - r0) * (c1 - c0)
    ):
        dst = (slice(int(ti.min()), int(ti.max()) + 1), slice(int(tj.min()), int(tj.max()) + 1))
        return window, dst, None
    dst_index = np.flatnonzero(inside)
    src_index = (r - r0) * (c1 - c0) + (c - c0)
    return window, dst_index, src_index


def atmosphere_of(step: TimeStep) -> dict[str, float]:
    """Per-step atmosphere for LST from the first granule that carries it (NaN elsewhere)."""
    values = dict.fromkeys(ATMOS_VARIABLES, np.nan)
    for item in step.items:
        atm = item.get("properties", {}).get("geoproc:atmosphere")
        if not atm:
            continue
        for band in ("lwir11", "lwir12"):
            for q, key in _ATMOS_KEYS.items():
                v = (atm.get(band) or {}).get(key)
                if v is not None:
                    values[f"atmos_{q}_{band}"] = float(v)
        if atm.get("water_vapour") is not None:
            values["atmos_water_vapour"] = float(atm["water_vapour"])
        break
    return values


def assemble_tile(
    steps: Sequence[TimeStep],
    tile: Tile,
    *,
    collections: Sequence[str],
    options: CubeOptions | None = None,
) -> xr.Dataset:
    """The lazy cube of one tile (dask; one task per time step reads all its bands once).

    Read errors are logged (the persisted build records them in the run record).
    """
    options = options or CubeOptions()
    names = cube_band_names(collections, options)
    qas = qa_names(collections)
    shape = tile.shape
    per_var: dict[str, list] = {n: [] for n in names + qas}
    atmos: dict[str, list[float]] = {a: [] for a in ATMOS_VARIABLES}
    for step in steps:
        d = dask.delayed(read_step, pure=True)(step, tile, names, options)
        for n in names:
            arr = dask.delayed(_band_or_nan, pure=True)(d, n, shape)
            per_var[n].append(da.from_delayed(arr, shape, np.float32))
        for n in qas:
            fill = 255 if n == "fmask" else 0
            arr = dask.delayed(_qa_or_fill, pure=True)(d, n, shape, fill)
            per_var[n].append(da.from_delayed(arr, shape, np.uint8))
        for a, v in atmosphere_of(step).items():
            atmos[a].append(v)
    coords = {
        "time": np.array([s.time for s in steps], "datetime64[ns]"),
        "y": tile.y_coords,
        "x": tile.x_coords,
        "platform": ("time", np.array([s.platform for s in steps], dtype="<U3")),
    }
    data = {
        n: (("time", "y", "x"), da.stack(v) if v else da.zeros((0, *shape), np.float32))
        for n, v in per_var.items()
    }
    data.update({a: (("time",), np.asarray(v, np.float32)) for a, v in atmos.items()})
    ds = xr.Dataset(data, coords=coords)
    return ds.rio.write_crs(tile.crs).rio.write_transform(tile.transform)


def _band_or_nan(d: StepData, name: str, shape) -> np.ndarray:
    return d.bands.get(name, np.full(shape, np.nan, np.float32))


def _qa_or_fill(d: StepData, name: str, shape, fill: int) -> np.ndarray:
    return d.qa.get(name, np.full(shape, fill, np.uint8))


def build_cubes(catalog: str, **kwargs) -> dict:
    """Plan, search, assemble and persist cubes; see `geoproc.cube.store.build_cubes`."""
    from geoproc.cube.store import build_cubes as _build

    return _build(catalog, **kwargs)
