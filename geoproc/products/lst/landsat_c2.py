"""Landsat Collection 2 Level-2 scene -> LST inputs (common band names, kelvin, HLS-style Fmask).

Real users hold Landsat C2 L2 scenes; this adapter turns one scene folder (the files named in
its MTL, JSON or ODL text) into the Dataset `geoproc.products.lst.run` expects, for every
sensor with a C2 surface temperature product: Landsat 4/5 TM and 7 ETM+ (band 6, 120 / 60 m
resampled to 30 m by USGS) and Landsat 8/9 TIRS (band 10, 100 m resampled). It follows the
Landsat C2 L2 Science Product Guides (USGS LSDS-1618 for L4-7, LSDS-1619 for L8-9): SR = DN *
2.75e-5 - 0.2 (or the MTL factors), ST_TRAD / ST_URAD / ST_DRAD = DN * 0.001 W m-2 sr-1 um-1,
ST_ATRAN and ST_EMIS = DN * 1e-4, ST_B6 / ST_B10 = DN * 0.00341802 + 149 K, and TOA brightness
temperature ``BT = K2 / ln(K1 / L + 1)`` with the band's own K1/K2 from the MTL. QA_PIXEL bits
(0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 shadow, 5 snow, 6 clear, 7 water) are re-coded
into the HLS Fmask layout of `geoproc.catalog.sensors`.

The atmosphere is the best the scene holds: per pixel from ST_ATRAN/URAD/DRAD (the MODTRAN
run on reanalysis profiles of Cook et al. 2014, interpolated per pixel by USGS), or on request
only their scene mean (what a per-scene reanalysis profile gives), or none (what HLS gives).
The dataset carries ``thermal_k1``/``thermal_k2``/``thermal_wavelength_um`` attributes so that
`run(..., thermal_constants="auto")` uses the band's own Planck law.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rioxarray
import xarray as xr

from geoproc.catalog.sensors import FMASK_BITS, FMASK_NODATA
from geoproc.errors import NoDataError, UsageError


@dataclass(frozen=True)
class LandsatSensor:
    """What differs between the Landsat sensors with a C2 surface temperature product."""

    sr_bands: dict
    """SR asset suffix -> common band name."""
    thermal_band: str
    """MTL band number of the thermal band (``6``, ``10``)."""
    thermal_wavelength_um: float
    """Effective wavelength of the thermal band (USGS band designations)."""


_TM_SR = {
    "SR_B1": "blue",
    "SR_B2": "green",
    "SR_B3": "red",
    "SR_B4": "nir08",
    "SR_B5": "swir16",
    "SR_B7": "swir22",
}
_OLI_SR = {
    "SR_B2": "blue",
    "SR_B3": "green",
    "SR_B4": "red",
    "SR_B5": "nir08",
    "SR_B6": "swir16",
    "SR_B7": "swir22",
}
SENSORS = {
    "LANDSAT_4": LandsatSensor(_TM_SR, "6", 11.45),
    "LANDSAT_5": LandsatSensor(_TM_SR, "6", 11.45),
    "LANDSAT_7": LandsatSensor(_TM_SR, "6", 11.27),
    "LANDSAT_8": LandsatSensor(_OLI_SR, "10", 10.90),
    "LANDSAT_9": LandsatSensor(_OLI_SR, "10", 10.90),
}
"""Spacecraft id (MTL ``SPACECRAFT_ID``) -> sensor description."""
SR_BANDS = _OLI_SR
ST_SCALES = {"ST_TRAD": 1e-3, "ST_URAD": 1e-3, "ST_DRAD": 1e-3, "ST_ATRAN": 1e-4, "ST_EMIS": 1e-4}
ST_B10_SCALE, ST_B10_OFFSET = 0.00341802, 149.0
QA_PIXEL_TO_FMASK = {
    0: None,
    1: "adjacent_cloud",
    2: "cirrus",
    3: "cloud",
    4: "cloud_shadow",
    5: "snow_ice",
    7: "water",
}
"""QA_PIXEL bit -> HLS Fmask bit name (bit 0 is fill)."""
QA_CLEAR_BIT = 6
ATMOSPHERE_MODES = ("per_pixel", "scene_mean", "none")
_ATMOS_LAYERS = (
    ("ST_ATRAN", "transmittance"),
    ("ST_URAD", "upwelling"),
    ("ST_DRAD", "downwelling"),
)


def find_scenes(folder: str | Path) -> list[Path]:
    """Every Landsat C2 L2 scene (its MTL file) at or below `folder`, one per product id."""
    root = Path(folder)
    found: dict[str, Path] = {}
    for mtl in sorted(root.rglob("*_MTL.*")):
        if mtl.suffix.lower() not in (".json", ".txt"):
            continue
        product = mtl.name.rsplit("_MTL", 1)[0]
        if "_L2SP_" in product and (product not in found or mtl.suffix == ".json"):
            found[product] = mtl
    return [found[k] for k in sorted(found)]


def load_landsat_c2_l2(
    scene: str | Path,
    *,
    atmosphere: str = "per_pixel",
    usgs_emissivity: bool = False,
    mask_clouds: bool = True,
) -> xr.Dataset:
    """LST inputs from a Landsat 4-9 C2 L2 scene folder (or its MTL file).

    Returns ``lwir11`` (TOA BT of TM/ETM+ band 6 or TIRS band 10, K), ``blue..swir22``
    reflectance, ``fmask`` (HLS bits), the atmosphere as ``atmos_*_lwir11`` (`atmosphere`:
    ``"per_pixel"`` maps, ``"scene_mean"`` one value per time, ``"none"`` left out), with
    `usgs_emissivity` the ASTER GED-based ST_EMIS as ``emissivity_lwir11``, and the USGS
    references ``st_lst`` (K), ``st_emis`` and ``qa_clear`` for validation (``st_b10`` too on
    Landsat 8/9). With `mask_clouds`, pixels flagged cloud, dilated cloud or shadow are NaN.
    """
    if atmosphere not in ATMOSPHERE_MODES:
        raise UsageError(
            f"atmosphere must be one of {', '.join(ATMOSPHERE_MODES)}, got {atmosphere!r}."
        )
    mtl_path = _find_mtl(Path(scene))
    meta = read_mtl(mtl_path)
    spacecraft = meta.get("IMAGE_ATTRIBUTES", {}).get("SPACECRAFT_ID", "")
    if spacecraft not in SENSORS:
        raise UsageError(
            f"{mtl_path.name} is from {spacecraft or 'an unknown spacecraft'}; this adapter reads "
            f"Landsat C2 L2 scenes of {', '.join(SENSORS)}."
        )
    sensor = SENSORS[spacecraft]
    folder = mtl_path.parent
    prefix = meta["PRODUCT_CONTENTS"]["LANDSAT_PRODUCT_ID"]

    qa = _read(folder / f"{prefix}_QA_PIXEL.TIF").astype("uint16")
    fill = (qa & 1) == 1
    fmask = xr.zeros_like(qa)
    for qa_bit, name in QA_PIXEL_TO_FMASK.items():
        if name is not None:
            fmask = fmask | (((qa >> qa_bit) & 1) << FMASK_BITS[name])
    fmask = xr.where(fill, FMASK_NODATA, fmask).astype("uint8")
    cloudy = (
        fmask & sum(1 << FMASK_BITS[b] for b in ("cloud", "adjacent_cloud", "cloud_shadow"))
    ) > 0
    usable = ~fill & ~cloudy if mask_clouds else ~fill

    data = {"fmask": fmask, "qa_clear": ((qa >> QA_CLEAR_BIT) & 1 == 1) & ~fill}
    sr_params = meta.get("LEVEL2_SURFACE_REFLECTANCE_PARAMETERS", {})
    for asset, name in sensor.sr_bands.items():
        number = asset[4:]
        scale = float(sr_params.get(f"REFLECTANCE_MULT_BAND_{number}", 2.75e-5))
        offset = float(sr_params.get(f"REFLECTANCE_ADD_BAND_{number}", -0.2))
        dn = _read(folder / f"{prefix}_{asset}.TIF")
        data[name] = (dn * scale + offset).where((dn != 0) & usable)

    st = {k: _read(folder / f"{prefix}_{k}.TIF", nodata=-9999) * s for k, s in ST_SCALES.items()}
    k1, k2 = _thermal_constants(meta, sensor.thermal_band)
    radiance = st["ST_TRAD"].where(st["ST_TRAD"] > 0)
    data["lwir11"] = (k2 / np.log1p(k1 / radiance)).where(usable)
    st_params = meta.get("LEVEL2_SURFACE_TEMPERATURE_PARAMETERS", {})
    band = f"ST_B{sensor.thermal_band}"
    scale = float(st_params.get(f"TEMPERATURE_MULT_BAND_{band}", ST_B10_SCALE))
    offset = float(st_params.get(f"TEMPERATURE_ADD_BAND_{band}", ST_B10_OFFSET))
    dn_st = _read(folder / f"{prefix}_{band}.TIF")
    data["st_lst"] = (dn_st * scale + offset).where(dn_st != 0)
    if sensor.thermal_band == "10":
        data["st_b10"] = data["st_lst"]
    data["st_emis"] = st["ST_EMIS"]
    if usgs_emissivity:
        data["emissivity_lwir11"] = st["ST_EMIS"].where(~fill)

    time = _acquisition_time(meta)
    ds = xr.Dataset(data).expand_dims(time=[time])
    for key, var in _ATMOS_LAYERS if atmosphere != "none" else ():
        field = st[key].where(~fill)
        if atmosphere == "per_pixel":
            ds[f"atmos_{var}_lwir11"] = field.expand_dims(time=[time])
        else:
            mean = float(field.mean(skipna=True))
            if not np.isfinite(mean):
                raise NoDataError(
                    f"{key} of {prefix} holds no valid pixel; the scene cannot give an atmosphere."
                )
            ds[f"atmos_{var}_lwir11"] = xr.DataArray([mean], dims="time", coords={"time": [time]})
    ds.attrs.update(
        {
            "source": prefix,
            "spacecraft": spacecraft,
            "thermal_k1": k1,
            "thermal_k2": k2,
            "thermal_wavelength_um": sensor.thermal_wavelength_um,
        }
    )
    return ds


def read_mtl(path: Path) -> dict:
    """The ``LANDSAT_METADATA_FILE`` group of an MTL, from its JSON or its ODL text form."""
    text = path.read_text()
    if path.suffix.lower() == ".json":
        return json.loads(text)["LANDSAT_METADATA_FILE"]
    # ODL: GROUP = NAME ... END_GROUP = NAME, KEY = VALUE lines (values quoted or bare).
    root: dict = {}
    stack = [root]
    for line in text.splitlines():
        match = re.match(r"\s*(\w+)\s*=\s*(.*?)\s*$", line)
        if not match:
            continue
        key, value = match.groups()
        if key == "GROUP":
            stack[-1][value] = {}
            stack.append(stack[-1][value])
        elif key == "END_GROUP":
            stack.pop()
        else:
            stack[-1][key] = value.strip('"')
    if "LANDSAT_METADATA_FILE" not in root:
        raise UsageError(f"{path.name} is not a Landsat MTL (no LANDSAT_METADATA_FILE group).")
    return root["LANDSAT_METADATA_FILE"]


def _find_mtl(scene: Path) -> Path:
    if scene.is_file() and re.search(r"_MTL\.(json|txt)$", scene.name):
        return scene
    found = []
    if scene.is_dir():
        found = sorted(scene.glob("*_MTL.json")) or sorted(scene.glob("*_MTL.txt"))
    if not found:
        raise UsageError(
            f"No *_MTL.json or *_MTL.txt in {str(scene)!r}; pass a Landsat C2 L2 scene folder "
            "or its MTL file."
        )
    return found[0]


def _read(path: Path, *, nodata: float | None = None) -> xr.DataArray:
    if not path.exists():
        raise UsageError(
            f"Missing Landsat C2 L2 file {path.name} in {str(path.parent)!r}; download the full scene."
        )
    arr = rioxarray.open_rasterio(path, masked=False).squeeze("band", drop=True).load()
    if nodata is not None:
        arr = arr.astype("float64").where(arr != nodata)
    return arr


def _thermal_constants(meta: dict, band: str) -> tuple[float, float]:
    consts = meta.get("LEVEL1_THERMAL_CONSTANTS", {})
    for suffix in (band, f"{band}_VCID_1"):  # ETM+ has a low- and a high-gain band 6
        if f"K1_CONSTANT_BAND_{suffix}" in consts:
            return float(consts[f"K1_CONSTANT_BAND_{suffix}"]), float(
                consts[f"K2_CONSTANT_BAND_{suffix}"]
            )
    raise UsageError(
        f"The MTL has no K1/K2_CONSTANT_BAND_{band}; use an unaltered Landsat C2 L2 MTL."
    )


def _acquisition_time(meta: dict) -> np.datetime64:
    attrs = meta.get("IMAGE_ATTRIBUTES", {})
    stamp = f"{attrs.get('DATE_ACQUIRED', '')}T{attrs.get('SCENE_CENTER_TIME', '00:00:00').rstrip('Z')[:15]}"
    return np.datetime64(pd.Timestamp(stamp).tz_localize(None), "ns")
