"""Land surface temperature, emissivity and the thermal atmosphere seen by Landsat TIRS.

The at-sensor radiance follows the radiative transfer equation
``L = tau * (eps * B(LST) + (1 - eps) * Ld) + Lu`` with the band-effective Planck function
``B(T) = K1 / (exp(K2 / T) - 1)`` and the Landsat 8 TIRS constants (USGS Landsat 8 data
users handbook; B10 K1=774.8853, K2=1321.0789, B11 K1=480.8883, K2=1201.1442), and the
brightness temperature ``BT = K2 / ln(K1 / L + 1)``. Emissivity comes from the fractional
vegetation cover with the NDVI-threshold / vegetation-cover method (Sobrino et al. 2004,
Remote Sens. Environ. 90:434; Valor & Caselles 1996): ``eps = eps_v * Pv + eps_s * (1 - Pv)
+ 4 <d eps> Pv (1 - Pv)``. The atmosphere (tau, Lu, Ld) is parameterised by the water vapour
column as in the single-channel method (Jimenez-Munoz et al. 2014, IEEE GRSL 11:1840):
tau falls with water vapour, Lu = (1 - tau) B(T_up), Ld = (1 - tau^1.66) B(T_down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geoproc.dev.sample.spectra import GREEN_ENDMEMBERS, SOIL_LIKE_ENDMEMBERS, WATER_ENDMEMBERS

PLANCK = {"lwir11": (774.8853, 1321.0789), "lwir12": (480.8883, 1201.1442)}
"""Landsat 8 TIRS (K1 [W m-2 sr-1 um-1], K2 [K]) for band 10 (lwir11) and band 11 (lwir12)."""

# Band emissivities (B10, B11): vegetation, soil / dry matter, water, urban, snow.
_EMISSIVITY = {
    "vegetation": (0.987, 0.989),
    "soil": (0.966, 0.974),
    "water": (0.991, 0.986),
    "urban": (0.950, 0.955),
    "snow": (0.990, 0.985),
}
_CAVITY = 0.005
_BAND_INDEX = {"lwir11": 0, "lwir12": 1}


def planck_radiance(temperature_k: np.ndarray | float, band: str) -> np.ndarray:
    """Band-effective blackbody radiance (W m-2 sr-1 um-1)."""
    k1, k2 = PLANCK[band]
    return k1 / (np.exp(k2 / np.asarray(temperature_k, dtype=np.float64)) - 1.0)


def brightness_temperature(radiance: np.ndarray | float, band: str) -> np.ndarray:
    """Inverse Planck: the temperature a blackbody needs to emit this band radiance."""
    k1, k2 = PLANCK[band]
    return k2 / np.log(k1 / np.asarray(radiance, dtype=np.float64) + 1.0)


@dataclass(frozen=True)
class ThermalAtmosphere:
    """Per-scene atmosphere of one Landsat acquisition (the synthetic 'reanalysis')."""

    water_vapour: float
    """Total column water vapour (g cm-2)."""
    transmittance: dict[str, float]
    upwelling: dict[str, float]
    downwelling: dict[str, float]

    def as_properties(self) -> dict:
        """The `geoproc:atmosphere` item property (radiances in W m-2 sr-1 um-1)."""
        out: dict = {
            band: {
                "transmittance": round(self.transmittance[band], 6),
                "upwelling_radiance": round(self.upwelling[band], 6),
                "downwelling_radiance": round(self.downwelling[band], 6),
            }
            for band in PLANCK
        }
        out["water_vapour"] = round(self.water_vapour, 4)
        out["units"] = {"radiance": "W m-2 sr-1 um-1", "water_vapour": "g cm-2"}
        out["source"] = "synthetic reanalysis"
        return out


def air_temperature_k(doy: float) -> float:
    """Mid-morning 2 m air temperature climatology at 500 m in the Alpine foreland."""
    return 281.0 - 10.5 * math.cos(2 * math.pi * (doy - 18) / 366.0)


def water_temperature_k(doy: float) -> float:
    """Lake/river skin temperature: lagged and damped against the air, never frozen."""
    return max(273.8, 281.5 - 8.0 * math.cos(2 * math.pi * (doy - 35) / 366.0))


def scene_atmosphere(doy: float, air_k: float, rng: np.random.Generator) -> ThermalAtmosphere:
    """Draw a plausible atmosphere: wetter in summer, tau and path radiances consistent."""
    mean_w = 0.9 + 1.5 * max(0.0, math.sin(math.pi * (doy - 60) / 300.0)) ** 1.5
    w = float(np.clip(mean_w * math.exp(rng.normal(0.0, 0.25)), 0.3, 4.5))
    tau = {"lwir11": math.exp(-(0.055 + 0.085 * w)), "lwir12": math.exp(-(0.075 + 0.135 * w))}
    t_up, t_down = air_k - 7.0, air_k - 4.0
    lu = {b: (1 - tau[b]) * float(planck_radiance(t_up, b)) for b in PLANCK}
    ld = {b: (1 - tau[b] ** 1.66) * float(planck_radiance(t_down, b)) for b in PLANCK}
    return ThermalAtmosphere(w, tau, lu, ld)


def vegetation_cover(fractions: dict[str, np.ndarray]) -> np.ndarray:
    """Fractional vegetation cover Pv of the land part of a pixel (0 over water/urban)."""
    green = sum(fractions[n] for n in GREEN_ENDMEMBERS)
    soil = sum(fractions[n] for n in SOIL_LIKE_ENDMEMBERS)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(green + soil > 0, green / (green + soil), 0.0)


def emissivity(fractions: dict[str, np.ndarray], band: str, rng: np.random.Generator) -> np.ndarray:
    """Band emissivity from the endmember fractions, with a cavity term and 0.002 noise."""
    i = _BAND_INDEX[band]
    green = sum(fractions[n] for n in GREEN_ENDMEMBERS)
    soil = sum(fractions[n] for n in SOIL_LIKE_ENDMEMBERS)
    water = sum(fractions[n] for n in WATER_ENDMEMBERS)
    pv = vegetation_cover(fractions)
    eps = (
        green * _EMISSIVITY["vegetation"][i]
        + soil * _EMISSIVITY["soil"][i]
        + water * _EMISSIVITY["water"][i]
        + fractions["urban"] * _EMISSIVITY["urban"][i]
        + fractions["snow"] * _EMISSIVITY["snow"][i]
        + (green + soil) * 4 * _CAVITY * pv * (1 - pv)
    )
    return np.clip(eps + rng.normal(0.0, 0.002, eps.shape), 0.90, 0.998)


def surface_temperature(
    fractions: dict[str, np.ndarray],
    *,
    doy: float,
    air_k: float,
    sun_factor: float,
    elevation_m: np.ndarray,
    shadow: np.ndarray,
    smooth_noise: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """LST (K): air temperature plus a class-dependent heating that grows with sunshine.

    Transpiring canopies stay near air temperature, dry soil, stubble and roofs heat by up
    to ~12 K at midday in summer, water follows its own lagged cycle, snow stays at or
    below 0 C; cloud shadows are a few kelvin cooler.
    """
    air = air_k - 0.0065 * (elevation_m - 500.0)
    t_water = water_temperature_k(doy)
    temps = {
        "green_broadleaf": air + 0.5 + 1.5 * sun_factor,
        "green_conifer": air + 1.0 + 2.0 * sun_factor,
        "green_herb": air + 1.0 + 3.0 * sun_factor,
        "dry_vegetation": air + 2.0 + 9.0 * sun_factor,
        "litter": air + 1.5 + 6.0 * sun_factor,
        "soil": air + 2.0 + 11.0 * sun_factor,
        "water_clear": np.full_like(air, t_water),
        "water_turbid": np.full_like(air, t_water - 1.0),
        "urban": air + 3.0 + 10.0 * sun_factor,
        "snow": np.minimum(273.15, air - 1.5),
    }
    lst = sum(fractions[n] * temps[n] for n in temps)
    lst = lst - 4.0 * sun_factor * shadow + 0.8 * smooth_noise + rng.normal(0.0, 0.2, lst.shape)
    return lst


def at_sensor_radiance(
    lst_k: np.ndarray, eps: np.ndarray, atmosphere: ThermalAtmosphere, band: str
) -> np.ndarray:
    """The radiative transfer equation for a clear-sky pixel."""
    tau = atmosphere.transmittance[band]
    return (
        tau * (eps * planck_radiance(lst_k, band) + (1 - eps) * atmosphere.downwelling[band])
        + atmosphere.upwelling[band]
    )


def invert_lst(bt_k: np.ndarray, eps: np.ndarray, atmosphere: dict, band: str) -> np.ndarray:
    """LST from a brightness temperature, an emissivity and a recorded `geoproc:atmosphere`."""
    a = atmosphere[band]
    radiance = planck_radiance(bt_k, band)
    surface = (
        (radiance - a["upwelling_radiance"]) / a["transmittance"]
        - (1 - eps) * a["downwelling_radiance"]
    ) / eps
    return brightness_temperature(surface, band)
