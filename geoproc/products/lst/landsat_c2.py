"""Landsat Collection 2 Level-2 scene -> LST inputs (common band names, kelvin, HLS-style Fmask).

Real users hold Landsat C2 L2 scenes; this adapter turns one scene folder (the files named in
its MTL.json) into the Dataset `geoproc.products.lst.run` expects, following the Landsat 8-9
C2 L2 Science Product Guide (USGS LSDS-1619): SR = DN * 2.75e-5 - 0.2 (or the MTL factors),
ST_TRAD / ST_URAD / ST_DRAD = DN * 0.001 W m-2 sr-1 um-1, ST_ATRAN and ST_EMIS = DN * 1e-4,
ST_B10 = DN * 0.00341802 + 149 K, and TOA brightness temperature ``BT = K2 / ln(K1 / L + 1)``
with the K1/K2 of the MTL. QA_PIXEL bits (0 fill, 1 dilated cloud, 2 cirrus, 3 cloud,
4 shadow, 5 snow, 6 clear, 7 water) are re-coded into the HLS Fmask layout of
`geoproc.catalog.sensors`. The atmosphere is given as the scene mean of ST_ATRAN/URAD/DRAD, the way a
per-scene reanalysis profile would be, or per pixel on request.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import rioxarray
import xarray as xr

from geoproc.catalog.sensors import FMASK_BITS, FMASK_NODATA
from geoproc.errors import NoDataError, UsageError

SR_BANDS = {
    "SR_B2": "blue",
    "SR_B3": "green",
    "SR_B4": "red",
    "SR_B5": "nir08",
    "SR_B6": "swir16",
    "SR_B7": "swir22",
}
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


def load_landsat_c2_l2(
    scene: str | Path, *, atmosphere: str = "scene_mean", mask_clouds: bool = True
) -> xr.Dataset:
    """LST inputs from a Landsat 8/9 C2 L2 scene folder (or its MTL.json).

    Returns ``lwir11`` (TOA BT, K), ``blue..swir22`` reflectance, ``fmask`` (HLS bits),
    ``atmos_*_lwir11`` (scene mean per time, or per pixel with ``atmosphere="per_pixel"``),
    plus the USGS references ``st_b10`` (K), ``st_emis`` and ``qa_clear`` for validation.
    With `mask_clouds`, pixels flagged cloud, dilated cloud or shadow are NaN, as in a cube.
    """
    if atmosphere not in ("scene_mean", "per_pixel"):
        raise UsageError(f"atmosphere must be 'scene_mean' or 'per_pixel', got {atmosphere!r}.")
    mtl_path = _find_mtl(Path(scene))
    meta = json.loads(mtl_path.read_text())["LANDSAT_METADATA_FILE"]
    spacecraft = meta.get("IMAGE_ATTRIBUTES", {}).get("SPACECRAFT_ID", "")
    if spacecraft not in ("LANDSAT_8", "LANDSAT_9"):
        # Landsat 4-7 number their SR bands differently and have one thermal band (B6).
        raise UsageError(
            f"{mtl_path.name} is from {spacecraft or 'an unknown spacecraft'}; this adapter reads "
            "Landsat 8/9 (OLI/TIRS) C2 L2 scenes only: pass a LC08_/LC09_ scene."
        )
    files = meta["PRODUCT_CONTENTS"]
    folder = mtl_path.parent
    prefix = files["LANDSAT_PRODUCT_ID"]

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
    for asset, name in SR_BANDS.items():
        number = asset[-1]
        scale = float(sr_params.get(f"REFLECTANCE_MULT_BAND_{number}", 2.75e-5))
        offset = float(sr_params.get(f"REFLECTANCE_ADD_BAND_{number}", -0.2))
        dn = _read(folder / f"{prefix}_{asset}.TIF")
        data[name] = (dn * scale + offset).where((dn != 0) & usable)

    st = {k: _read(folder / f"{prefix}_{k}.TIF", nodata=-9999) * s for k, s in ST_SCALES.items()}
    k1, k2 = _thermal_constants(meta)
    radiance = st["ST_TRAD"].where(st["ST_TRAD"] > 0)
    data["lwir11"] = (k2 / np.log1p(k1 / radiance)).where(usable)
    dn10 = _read(folder / f"{prefix}_ST_B10.TIF")
    data["st_b10"] = (dn10 * ST_B10_SCALE + ST_B10_OFFSET).where(dn10 != 0)
    data["st_emis"] = st["ST_EMIS"]

    time = _acquisition_time(meta)
    ds = xr.Dataset(data).expand_dims(time=[time])
    for key, var in (
        ("ST_ATRAN", "transmittance"),
        ("ST_URAD", "upwelling"),
        ("ST_DRAD", "downwelling"),
    ):
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
    ds.attrs.update({"source": prefix, "thermal_k1": k1, "thermal_k2": k2})
    return ds


def _find_mtl(scene: Path) -> Path:
    if scene.is_file() and scene.name.endswith("_MTL.json"):
        return scene
    found = sorted(scene.glob("*_MTL.json")) if scene.is_dir() else []
    if not found:
        raise UsageError(
            f"No *_MTL.json in {str(scene)!r}; pass a Landsat C2 L2 scene folder or its MTL.json."
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


def _thermal_constants(meta: dict) -> tuple[float, float]:
    consts = meta.get("LEVEL1_THERMAL_CONSTANTS", {})
    try:
        return float(consts["K1_CONSTANT_BAND_10"]), float(consts["K2_CONSTANT_BAND_10"])
    except KeyError as exc:
        raise UsageError(
            "The MTL.json has no K1/K2_CONSTANT_BAND_10; use an unaltered Landsat 8/9 C2 L2 MTL."
        ) from exc


def _acquisition_time(meta: dict) -> np.datetime64:
    attrs = meta.get("IMAGE_ATTRIBUTES", {})
    stamp = f"{attrs.get('DATE_ACQUIRED', '')}T{attrs.get('SCENE_CENTER_TIME', '00:00:00').rstrip('Z')[:15]}"
    return np.datetime64(pd.Timestamp(stamp).tz_localize(None), "ns")
