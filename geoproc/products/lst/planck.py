"""Thermal band constants and the band-effective Planck law (radiance <-> brightness temperature).

Landsat TIRS radiance and brightness temperature are linked by the calibration constants
published in every Landsat MTL file: ``BT = K2 / ln(K1 / L + 1)`` and its inverse
``L = K1 / (exp(K2 / BT) - 1)`` (Landsat 8 Data Users Handbook, USGS LSDS-1574, section 5.3;
Landsat 9 handbook LSDS-2082). K1 is in W m-2 sr-1 um-1 and K2 in kelvin, so radiance stays
per MICROMETRE throughout; the monochromatic Planck function below uses c1 and c2 in
micrometre units for the same reason (mixing metres and micrometres is the pylandtemp bug
that silently returns LST ~ brightness temperature).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geoproc.errors import UnknownNameError, UsageError

C1_W_UM4_PER_M2_SR = 1.191042e8
"""First radiation constant for spectral radiance, 2 h c^2, in W um^4 m-2 sr-1."""
C2_UM_K = 1.4387752e4
"""Second radiation constant, h c / k, in um K."""


@dataclass(frozen=True)
class ThermalBand:
    """Calibration of one thermal band: the band-effective Planck law ``L = K1/(exp(K2/T)-1)``."""

    name: str
    """Common band name (`lwir11`, `lwir12`)."""
    k1: float
    """K1 constant in W m-2 sr-1 um-1."""
    k2: float
    """K2 constant in kelvin."""
    center_wavelength_um: float
    """Effective wavelength in micrometres (used by the single-channel method's gamma term)."""
    lst_offset_k: float = 0.0
    """Kelvin subtracted from an LST converted with K1/K2: the two-constant law's departure
    from the spectral-response-integrated Planck table that the USGS C2 ST product uses
    (Cook et al. 2014). Measured on real C2 L2 scenes, see `LANDSAT5_TM`."""


LANDSAT8_TIRS = {
    "lwir11": ThermalBand("lwir11", k1=774.8853, k2=1321.0789, center_wavelength_um=10.904),
    "lwir12": ThermalBand("lwir12", k1=480.8883, k2=1201.1442, center_wavelength_um=12.003),
}
"""Landsat 8 TIRS B10/B11 constants (MTL LEVEL1_THERMAL_CONSTANTS)."""

LANDSAT9_TIRS2 = {
    "lwir11": ThermalBand("lwir11", k1=799.0284, k2=1329.2405, center_wavelength_um=10.904),
    "lwir12": ThermalBand("lwir12", k1=475.6581, k2=1198.3494, center_wavelength_um=12.003),
}
"""Landsat 9 TIRS-2 B10/B11 constants (MTL LEVEL1_THERMAL_CONSTANTS)."""

LANDSAT4_TM = {"lwir11": ThermalBand("lwir11", k1=671.62, k2=1284.30, center_wavelength_um=11.45)}
"""Landsat 4 TM band 6 constants (Chander et al. 2009, Remote Sens. Environ. 113:893)."""
LANDSAT5_TM = {
    "lwir11": ThermalBand(
        "lwir11", k1=607.76, k2=1260.56, center_wavelength_um=11.45, lst_offset_k=0.40
    )
}
"""Landsat 5 TM band 6 (Chander et al. 2009). The 2.1 um wide band is poorly fitted by two
constants: inverting the USGS C2 L2 layers (ST_TRAD/URAD/DRAD/ATRAN/EMIS) with K1/K2 gives
LST 0.40 K above ST_B6 at every pixel of a real 1998 scene (1,914 clear pixels, spread
0.04 K), so LST from K1/K2 is lowered by 0.40 K. ETM+ (-0.02 K) and TIRS (+0.11..0.15 K on
two scenes) are left uncorrected."""
LANDSAT7_ETM = {"lwir11": ThermalBand("lwir11", k1=666.09, k2=1282.71, center_wavelength_um=11.27)}
"""Landsat 7 ETM+ band 6 constants (Chander et al. 2009)."""

THERMAL_CONSTANTS = {
    "landsat4": LANDSAT4_TM,
    "landsat5": LANDSAT5_TM,
    "landsat7": LANDSAT7_ETM,
    "landsat8": LANDSAT8_TIRS,
    "landsat9": LANDSAT9_TIRS2,
}
SPACECRAFT_CONSTANTS = {f"LANDSAT_{n}": f"landsat{n}" for n in (4, 5, 7, 8, 9)}
"""MTL ``SPACECRAFT_ID`` -> key of `THERMAL_CONSTANTS`."""


def constants_for_dataset(attrs: dict, default: str = "landsat8") -> str | dict:
    """Thermal constants a dataset names, else `default` (HLS L30 is TIRS).

    The MTL's own ``thermal_k1``/``thermal_k2`` attributes win (as `landsat_c2` sets them),
    keeping the sensor's `lst_offset_k` when its ``spacecraft``/``platform`` is known; else the
    sensor's table entry; else `default`.
    """
    sensor = None
    for key in ("spacecraft", "platform"):
        name = str(attrs.get(key, "")).upper().replace("-", "_").replace("LANDSAT", "LANDSAT_")
        name = name.replace("LANDSAT__", "LANDSAT_")
        if name in SPACECRAFT_CONSTANTS:
            sensor = SPACECRAFT_CONSTANTS[name]
            break
    if "thermal_k1" in attrs and "thermal_k2" in attrs:
        table = THERMAL_CONSTANTS[sensor or default]
        base = table["lwir11"]
        band = ThermalBand(
            "lwir11",
            k1=float(attrs["thermal_k1"]),
            k2=float(attrs["thermal_k2"]),
            center_wavelength_um=float(
                attrs.get("thermal_wavelength_um", base.center_wavelength_um)
            ),
            lst_offset_k=base.lst_offset_k if sensor else 0.0,
        )
        return {**table, "lwir11": band}
    return sensor or default


def thermal_band(name: str, *, constants: str | dict = "landsat8") -> ThermalBand:
    """The calibration of band `name`; `constants` is a sensor key or a {band: ThermalBand} map."""
    table = constants
    if isinstance(constants, str):
        if constants not in THERMAL_CONSTANTS:
            raise UnknownNameError(
                f"Unknown thermal constants {constants!r}; use one of "
                f"{', '.join(sorted(THERMAL_CONSTANTS))} or pass a dict of ThermalBand."
            )
        table = THERMAL_CONSTANTS[constants]
    if name not in table:
        raise UnknownNameError(
            f"No thermal constants for band {name!r}; the table has {', '.join(sorted(table))}."
        )
    band = table[name]
    if not isinstance(band, ThermalBand) or band.k1 <= 0 or band.k2 <= 0:
        raise UsageError(f"Thermal constants for {name!r} must be a ThermalBand with K1, K2 > 0.")
    return band


def radiance_from_bt(bt, band: ThermalBand):
    """Band radiance (W m-2 sr-1 um-1) from brightness temperature (K); NaN stays NaN."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return band.k1 / np.expm1(band.k2 / bt)


def bt_from_radiance(radiance, band: ThermalBand):
    """Brightness temperature (K) from band radiance; non-positive radiance gives NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return band.k2 / np.log1p(band.k1 / positive_or_nan(radiance))


def planck_radiance(temperature, wavelength_um: float):
    """Monochromatic blackbody radiance in W m-2 sr-1 um-1 at `wavelength_um` MICROMETRES."""
    lam = float(wavelength_um)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return C1_W_UM4_PER_M2_SR / (lam**5 * np.expm1(C2_UM_K / (lam * temperature)))


def positive_or_nan(values):
    """`values` where > 0, NaN elsewhere; keeps xarray objects (and their dask laziness) intact."""
    if hasattr(values, "where") and hasattr(values, "dims"):
        return values.where(values > 0)
    with np.errstate(invalid="ignore"):
        return np.where(np.asarray(values) > 0, values, np.nan)
