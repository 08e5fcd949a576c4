"""Landsat C2 L2 surface-temperature layers in a cube -> the inputs `lst.run` reads.

A Landsat Collection 2 Level-2 cube (collection ``landsat-c2-l2``, `geoproc.catalog.sensors`)
holds the USGS ST product's own inputs per pixel: ``st_trad`` (the thermal band's TOA radiance),
``st_urad`` / ``st_drad`` / ``st_atran`` (the MODTRAN atmosphere on reanalysis profiles,
Cook et al. 2014) and ``st_emis`` (ASTER GED-based emissivity), beside the surface temperature
itself (``st_temperature``, or ``lwir11`` in hand-built datasets). LST needs a TOA brightness
temperature, so it is computed from ST_TRAD with the band's Planck constants,
``BT = K2 / ln(K1 / L + 1)`` (USGS LSDS-1619 section 5), and the ST atmosphere becomes the
``atmos_*_lwir11`` maps that the RTE inversion uses per pixel. The surface temperature is never
read as a brightness temperature: it is already corrected for the atmosphere and emissivity.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from geoproc.errors import UsageError
from geoproc.products.lst.planck import (
    SPACECRAFT_CONSTANTS,
    bt_from_radiance,
    constants_for_dataset,
    thermal_band,
)

ST_RADIANCE = "st_trad"
ST_ATMOSPHERE = {
    "st_atran": "atmos_transmittance_lwir11",
    "st_urad": "atmos_upwelling_lwir11",
    "st_drad": "atmos_downwelling_lwir11",
}
"""Cube ST layer -> the atmosphere variable `lst.run` inverts the RTE with."""
ST_EMISSIVITY = "st_emis"
ST_TEMPERATURE_NAMES = ("st_temperature",)
"""Names the USGS surface temperature (ST_B6 / ST_B10) takes in a cube."""


def is_surface_temperature(var: xr.DataArray) -> bool:
    """True when a thermal variable's attributes say it is a surface (not TOA) temperature."""
    standard = str(var.attrs.get("standard_name", "")).lower()
    long_name = str(var.attrs.get("long_name", "")).lower()
    return standard == "surface_temperature" or (
        "surface temperature" in long_name and "brightness" not in long_name
    )


def has_st_layers(ds: xr.Dataset) -> bool:
    """True when `ds` holds the ST radiance and the full ST atmosphere."""
    return ST_RADIANCE in ds and all(name in ds for name in ST_ATMOSPHERE)


def st_inputs(
    ds: xr.Dataset,
    *,
    constants: str | dict | None = None,
    constants_source: str = "thermal_constants option",
    usgs_emissivity: bool = False,
) -> tuple[xr.Dataset, dict]:
    """`ds` with ``lwir11`` = TOA BT from ``st_trad`` and the ST atmosphere as ``atmos_*_lwir11``.

    `constants` (a `planck.THERMAL_CONSTANTS` key or {band: ThermalBand}) default to
    `band_constants`. Returns the dataset and the provenance attributes for the output.
    Wherever ST_TRAD or one of the atmosphere layers is masked, ``lwir11`` is NaN, so no LST
    is made there. With
    `usgs_emissivity`, ``st_emis`` becomes ``emissivity_lwir11`` (a given one is kept).
    Datasets without the ST layers come back unchanged (an ST-only ``lwir11`` is refused).
    """
    if not has_st_layers(ds):
        _refuse_surface_temperature(ds)
        if usgs_emissivity and "emissivity_lwir11" not in ds:
            return _with_st_emissivity(ds), {
                "geoproc:emissivity_source": "Landsat C2 L2 ST_EMIS (ASTER GED)"
            }
        return ds, {}
    if constants is None:
        constants, constants_source = band_constants(ds)
    band = thermal_band("lwir11", constants=constants)  # validates a user's constants
    radiance = ds[ST_RADIANCE].astype("float64")
    layers = [ds[name].astype("float64") for name in ST_ATMOSPHERE]
    all_known = np.isfinite(radiance)
    for layer in layers:
        all_known = all_known & np.isfinite(layer)
    out = ds.copy()
    bt = bt_from_radiance(radiance, band).where(all_known)
    bt.attrs = {
        "units": "K",
        "standard_name": "toa_brightness_temperature",
        "long_name": f"TOA brightness temperature from {ST_RADIANCE}",
    }
    if "grid_mapping" in ds[ST_RADIANCE].attrs:
        bt.attrs["grid_mapping"] = ds[ST_RADIANCE].attrs["grid_mapping"]
    out["lwir11"] = bt
    for name, target in ST_ATMOSPHERE.items():
        # the per-pixel ST layers replace the cube's per-scene atmos_* (NaN when the items
        # carry none); run()'s `atmosphere` option still wins over both
        out[target] = ds[name].astype("float64")
    provided_emissivity = "emissivity_lwir11" in ds
    if usgs_emissivity and not provided_emissivity:
        out = _with_st_emissivity(out)
    attrs = {
        "geoproc:lwir11_source": f"TOA brightness temperature from {ST_RADIANCE} (Landsat C2 L2)",
        "geoproc:atmosphere_source": "Landsat C2 L2 ST_ATRAN/ST_URAD/ST_DRAD per pixel",
        "geoproc:thermal_constants": constants_source,
        "geoproc:thermal_k1": band.k1,
        "geoproc:thermal_k2": band.k2,
    }
    if usgs_emissivity and not provided_emissivity:
        attrs["geoproc:emissivity_source"] = "Landsat C2 L2 ST_EMIS (ASTER GED)"
    return out, _spacecraft_attrs(constants, out, attrs)


def _with_st_emissivity(ds: xr.Dataset) -> xr.Dataset:
    if ST_EMISSIVITY not in ds:
        raise UsageError(
            "usgs_emissivity=True needs the 'st_emis' layer (Landsat C2 L2 ST_EMIS) in the "
            "dataset; add it to the cube bands or pass usgs_emissivity=False."
        )
    return ds.assign(emissivity_lwir11=ds[ST_EMISSIVITY].astype("float64"))


def band_constants(ds: xr.Dataset) -> tuple[str | dict, str]:
    """The thermal band's constants and a sentence saying where they came from.

    The MTL's ``thermal_k1``/``thermal_k2`` attributes first, then the sensor named by a
    ``spacecraft``/``platform`` attribute or coordinate, else Landsat 8 TIRS band 10 (the
    cube's ``platform`` coordinate, ``LC2``, does not name the spacecraft).
    """
    attrs = dict(ds.attrs)
    if "thermal_k1" in attrs and "thermal_k2" in attrs:
        return constants_for_dataset(attrs), "dataset attributes thermal_k1/thermal_k2 (MTL)"
    for key in ("spacecraft", "platform"):
        sensor = _sensor_key(attrs.get(key))
        if sensor:
            return sensor, f"{sensor} (dataset attribute {key}={attrs[key]!r})"
    per_time = time_sensors(ds)
    if per_time is not None:
        sensors, where = per_time
        known = set(sensors) - {None}
        if len(known) == 1 and None not in sensors:
            sensor = known.pop()
            return sensor, f"{sensor} ({where})"
        if len(known) > 1:
            raise UsageError(
                f"The dataset mixes Landsat sensors ({', '.join(sorted(known))}, from {where}); "
                "their thermal bands differ: run LST on one sensor's time steps at a time."
            )
    return (
        "landsat8",
        "landsat8 (assumed: no thermal_k1/k2, spacecraft or platform names the sensor)",
    )


def time_sensors(ds: xr.Dataset) -> tuple[list[str | None], str] | None:
    """The sensor key of each time step and where it was read, or None when nothing names it.

    From a ``spacecraft``/``platform`` coordinate along time, else from the cube's
    ``geoproc:source_items`` attribute (the Landsat product ids of each step, e.g.
    ``LE07_L2SP_...``: the first four characters name the sensor).
    """
    n = ds.sizes.get("time")
    for key in ("spacecraft", "platform"):
        if key in ds.coords and ds[key].size >= 1:
            values = [str(v) for v in np.atleast_1d(ds[key].values)]
            sensors = [_sensor_key(v) for v in values]
            if any(sensors):
                return sensors, f"{key} coordinate {sorted(set(values))}"
    items = ds.attrs.get("geoproc:source_items")
    if isinstance(items, str):
        try:
            items = json.loads(items)
        except ValueError:
            items = None
    if isinstance(items, (list, tuple)) and n is not None and len(items) == n:
        sensors = []
        for step in items:
            ids = [step] if isinstance(step, str) else list(step or [])
            keys = {_sensor_key(str(i)) for i in ids} - {None}
            sensors.append(keys.pop() if len(keys) == 1 else None)
        if any(sensors):
            return sensors, "geoproc:source_items product ids"
    return None


def _sensor_key(value) -> str | None:
    if value is None:
        return None
    name = str(value).upper().replace("-", "_").replace(" ", "_")
    name = name.replace("LANDSAT", "LANDSAT_").replace("LANDSAT__", "LANDSAT_")
    if name in SPACECRAFT_CONSTANTS:
        return SPACECRAFT_CONSTANTS[name]
    short = {f"L{c}0{n}": f"landsat{n}" for n in (4, 5, 7, 8, 9) for c in "CTEO"}
    return short.get(name[:4]) if len(name) >= 4 else None


def _spacecraft_attrs(constants, ds: xr.Dataset, attrs: dict) -> dict:
    if isinstance(constants, str):
        attrs["geoproc:thermal_sensor"] = constants
    elif "spacecraft" in ds.attrs:
        attrs["geoproc:thermal_sensor"] = str(ds.attrs["spacecraft"])
    return attrs


def _refuse_surface_temperature(ds: xr.Dataset) -> None:
    """An ST-only dataset would silently give LST of LST: say which layers are missing."""
    st_only = [n for n in ST_TEMPERATURE_NAMES if n in ds]
    if "lwir11" in ds and is_surface_temperature(ds["lwir11"]):
        st_only.append("lwir11")
    if not st_only or ("lwir11" in ds and "lwir11" not in st_only):
        return
    missing = [n for n in (ST_RADIANCE, *ST_ATMOSPHERE) if n not in ds]
    raise UsageError(
        f"{st_only[0]!r} is the Landsat C2 L2 surface temperature (already LST), not a TOA "
        f"brightness temperature; add {', '.join(missing)} to the cube bands (--bands) so LST "
        "can be computed from ST_TRAD, or use the st_temperature layer directly."
    )
