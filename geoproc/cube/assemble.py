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
* Landsat C2 L2 steps (platform ``LC2``): reflectance bands as above (USGS scale 2.75e-5,
  offset -0.2), ``st_temperature`` (K, USGS surface temperature), ``st_trad``, ``st_urad``,
  ``st_drad`` (W m-2 sr-1 um-1), ``st_atran``, ``st_emis`` (float32, per pixel), and
  QA_PIXEL translated into ``fmask`` bits (LSDS-1619 table 6-3).
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

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from rasterio.enums import Resampling

from geoproc.catalog.items import AssetRef, ParsedItem, locate_asset, parse_item
from geoproc.catalog.search import TimeStep
from geoproc.catalog.sensors import (
    DEFAULT_FMASK_MASKED,
    DEFAULT_SCL_MASKED,
    FMASK_BITS,
    FMASK_NODATA,
    LANDSAT_QA_TO_FMASK,
    S2_BOA_ADD_OFFSET,
    S2_OFFSET_BASELINE,
    BandProfile,
    QAProfile,
    SensorProfile,
    profile_for,
)
from geoproc.cube.read import (  # noqa: F401  (re-exported: older imports use these names)
    GDAL_ENV,
    AssetReader,
    _warp_read,
    endpoint_of,
    is_transient,
    is_transient_message,
)
from geoproc.errors import UnknownNameError
from geoproc.grid import Tile

log = logging.getLogger(__name__)

BAND_ORDER = (
    "coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08",
    "nir09", "cirrus", "swir16", "swir22", "lwir11", "lwir12", "vv", "vh",
    "st_temperature", "st_trad", "st_urad", "st_drad", "st_atran", "st_emis",
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
    """QA variables of a cube of these collections (Landsat QA_PIXEL lands in `fmask`)."""
    got = {profile_for(c).qa.cube_variable for c in collections if profile_for(c).qa}
    return [n for n in ("fmask", "scl") if n in got]


@dataclass(frozen=True)
class _Granule:
    """The items of one scene in a step (USGS splits a Landsat scene into SR and ST items)."""

    items: tuple[ParsedItem, ...]

    def locate(self, keys: tuple[str, ...], common_name: str | None = None):
        for item in self.items:
            ref = locate_asset(item, keys, common_name=common_name)
            if ref is not None:
                return item, ref
        return None


def _scene_key(item: ParsedItem) -> str:
    for suffix in ("_SR", "_ST"):
        if item.id.endswith(suffix):
            return item.id[: -len(suffix)]
    return item.id


def granules(items: Sequence) -> list[_Granule]:
    """Group a step's items by scene, keeping the step's mosaic order."""
    groups: dict[str, list[ParsedItem]] = {}
    for raw in items:
        item = parse_item(raw)
        groups.setdefault(_scene_key(item), []).append(item)
    return [_Granule(tuple(g)) for g in groups.values()]


def read_step(
    step: TimeStep,
    tile: Tile,
    band_names: Sequence[str],
    options: CubeOptions,
    *,
    reader: AssetReader | None = None,
) -> StepData:
    """Read and mosaic every granule of one step onto the tile grid (first valid pixel wins).

    `reader` is the read seam (policy, credentials, retries); tests pass one with a fake
    `Reader`. Credentials refusals and exhausted retries raise: the step is not written.
    """
    reader = reader or AssetReader(retries=options.read_retries)
    profile = profile_for(step.collection)
    shape = tile.shape
    wanted = [b for b in profile.bands if b.name in band_names]
    out = {b.name: np.full(shape, np.nan, np.float32) for b in wanted}
    taken = np.zeros(shape, bool)
    qa_name = profile.qa.cube_variable if profile.qa else None
    qa_fill = _cube_qa_fill(profile.qa) if profile.qa else None
    qa_out = qa_first = None
    if profile.qa:
        qa_out = np.full(shape, qa_fill, np.uint8)
        qa_first = qa_out.copy()
    errors: list[dict] = []
    for granule in granules(step.items):
        clear = np.ones(shape, bool)
        if profile.qa:
            found = granule.locate(profile.qa.lookup_keys)
            if found is None:
                item = granule.items[0]
                errors.append(
                    {"item": item.id, "asset": profile.qa.asset, "error": "asset missing from item"}
                )
                continue  # without QA we cannot tell clouds from ground: the granule adds nothing
            got = reader.read(
                found[0],
                found[1],
                tile,
                resampling="nearest",
                nodata=profile.qa.nodata,
                errors=errors,
            )
            if got is None:
                continue
            q = qa_to_cube(got[0], got[1], profile.qa)
            observed = q != qa_fill
            clear = observed & ~_qa_masked(q, profile, options)
            first = (qa_first == qa_fill) & observed
            qa_first[first] = q[first]
        values = {}
        any_valid = np.zeros(shape, bool)
        for band in wanted:
            v = _read_band(granule, band, profile, tile, options, reader, errors)
            if v is not None:
                values[band.name] = v
                any_valid |= np.isfinite(v)
        take = clear & any_valid & ~taken
        if not taken.any():
            # first granule (the only one of most steps): keep its arrays, no gather/scatter
            keep = ~take
            for name, v in values.items():
                v[keep] = np.nan
                out[name] = v
            if profile.qa:
                qa_out = np.where(take, q, qa_out)
        else:
            for name, v in values.items():
                out[name][take] = v[take]
            if profile.qa:
                qa_out[take] = q[take]
        taken |= take
    qa = {}
    if profile.qa:
        qa[qa_name] = np.where(taken, qa_out, qa_first)
    return StepData(out, qa, atmosphere_of(step), errors)


def _cube_qa_fill(qa: QAProfile) -> int:
    return FMASK_NODATA if qa.kind == "landsat_qa_pixel" else qa.nodata


def qa_to_cube(raw: np.ndarray, fill, qa: QAProfile) -> np.ndarray:
    """The QA layer as the cube stores it (uint8): Fmask and SCL as read, QA_PIXEL as Fmask bits.

    QA_PIXEL (USGS LSDS-1619 table 6-3): bit 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud,
    4 cloud shadow, 5 snow, 7 water; each moves to the Fmask bit of the same meaning.
    """
    if qa.kind == "landsat_qa_pixel":
        bits = raw.astype(np.int64)
        out = np.zeros(raw.shape, np.uint8)
        for qa_bit, name in LANDSAT_QA_TO_FMASK.items():
            out |= (((bits >> qa_bit) & 1) << FMASK_BITS[name]).astype(np.uint8)
        unusable = ((bits & 1) == 1) | (bits < 0)
        if fill is not None:
            unusable |= raw == fill
        return np.where(unusable, FMASK_NODATA, out).astype(np.uint8)
    bad = (raw < 0) | (raw > 255)
    if fill is not None:
        bad |= raw == fill
    return np.where(bad, qa.nodata, raw).astype(np.uint8)


def _qa_masked(q: np.ndarray, profile: SensorProfile, options: CubeOptions) -> np.ndarray:
    if profile.qa.kind in ("fmask_bits", "landsat_qa_pixel"):
        bits = 0
        for name in options.fmask_masked:
            bits |= 1 << FMASK_BITS[name]
        return (q & np.uint8(bits)) != 0
    return np.isin(q, np.asarray(options.scl_masked, np.uint8))


def _read_band(
    granule: _Granule, band: BandProfile, profile, tile, options, reader, errors
) -> np.ndarray | None:
    found = granule.locate(band.lookup_keys, common_name=band.name)
    if found is None:
        item = granule.items[0]
        errors.append({"item": item.id, "asset": band.asset, "error": "asset missing from item"})
        return None
    item, ref = found
    got = reader.read(
        item, ref, tile, resampling=options.resampling, nodata=band.nodata, errors=errors
    )
    if got is None:
        return None
    dn, nodata = got
    valid = np.isfinite(dn) if nodata is None else (dn != nodata) & np.isfinite(dn)
    scale, offset = scale_offset(item, band, profile, ref)
    # float32 in place: no full-size float64 temporaries (the store packs to the same integers)
    value = dn.astype(np.float32)
    value *= np.float32(scale)
    value += np.float32(offset)
    if profile.family == "sar":
        valid &= value > 0
        if options.sar_db:
            value[~valid] = 1.0
            np.log10(value, out=value)
            value *= np.float32(10.0)
    value[~valid] = np.nan
    return value


def scale_offset(
    item: ParsedItem, band: BandProfile, profile: SensorProfile, ref: AssetRef
) -> tuple[float, float]:
    """``value = dn * scale + offset`` for one asset band.

    The profile's numbers, except for collections whose catalogs publish ``raster:bands``
    (Sentinel-2, Landsat C2), where the asset's scale/offset win. Sentinel-2: Earth Search's
    ``earthsearch:boa_offset_applied: true`` means the -1000 DN offset was already removed
    from the pixels, so the -0.1 in ``raster:bands`` is not applied again; without
    ``raster:bands``, baseline >= 04.00 gets BOA_ADD_OFFSET -1000 (ESA 2022).
    """
    props = item.get("properties") or {}
    s2 = profile.platform_group == "S2"
    already = s2 and props.get("earthsearch:boa_offset_applied") is True
    if profile.raster_bands_scaling:
        rb = ref.raster_band
        if "offset" in rb or "scale" in rb:
            scale = float(rb.get("scale") or band.scale)
            offset = 0.0 if already else float(rb.get("offset") or 0.0)
            return scale, offset
    if s2 and not already:
        baseline = str(props.get("s2:processing_baseline", ""))
        if baseline and _baseline_tuple(baseline) >= _baseline_tuple(S2_OFFSET_BASELINE):
            return band.scale, S2_BOA_ADD_OFFSET * band.scale
    return band.scale, band.offset


def _baseline_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        return (0,)


def _locate(item, key: str) -> tuple[str, int, dict] | None:
    """(href, 1-based band index, asset) of an asset key (kept for older callers)."""
    ref = locate_asset(item, (key,))
    if ref is None:
        return None
    return ref.href, ref.band_index, dict((item.get("assets") or {}).get(ref.key) or {})


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
    import dask  # here, not at the top: importing dask.array costs ~1 s of every CLI start
    import dask.array as da

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


def band_attrs(name: str) -> dict:
    """CF attributes of a cube band variable from its profile (Landsat ST layers use it)."""
    from geoproc.catalog.sensors import PROFILES

    for profile in PROFILES.values():
        for band in profile.bands:
            if band.name == name:
                attrs = {"units": band.units, "long_name": band.long_name or name.replace("_", " ")}
                if name == "st_temperature":
                    attrs["standard_name"] = "surface_temperature"
                return attrs
    return {"long_name": name.replace("_", " ")}
