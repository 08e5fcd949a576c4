"""Surface reflectance spectra of the endmembers the landscape is mixed from.

Values are typical library spectra resampled to the Sentinel-2 MSI / Landsat OLI band
centres (shapes after the USGS Spectral Library v7, Kokaly et al. 2017, and the ASTER/ECOSTRESS
library, Meerdink et al. 2019): green canopies with a red edge and NIR plateau, conifers
darker in the NIR, senescent vegetation and soil rising into the SWIR, water dark beyond
the red, snow bright in the visible and dark in the SWIR. A pixel is a linear mixture of
endmember fractions, so NDVI, FVC and emissivity all follow from the same fractions.
"""

from __future__ import annotations

import numpy as np

_WAVELENGTH_UM = np.array(
    [0.443, 0.490, 0.560, 0.665, 0.705, 0.740, 0.783, 0.842, 0.865, 0.945, 1.610, 2.190]
)

ENDMEMBERS: dict[str, np.ndarray] = {
    "green_broadleaf": np.array(
        [0.020, 0.030, 0.070, 0.030, 0.090, 0.280, 0.390, 0.420, 0.430, 0.420, 0.200, 0.090]
    ),
    "green_conifer": np.array(
        [0.015, 0.022, 0.045, 0.020, 0.060, 0.180, 0.250, 0.270, 0.280, 0.270, 0.120, 0.050]
    ),
    "green_herb": np.array(
        [0.025, 0.035, 0.080, 0.035, 0.110, 0.300, 0.400, 0.440, 0.450, 0.430, 0.230, 0.110]
    ),
    "dry_vegetation": np.array(
        [0.050, 0.070, 0.110, 0.140, 0.170, 0.200, 0.230, 0.260, 0.270, 0.270, 0.360, 0.260]
    ),
    "litter": np.array(
        [0.035, 0.045, 0.065, 0.080, 0.100, 0.140, 0.170, 0.200, 0.210, 0.210, 0.260, 0.170]
    ),
    "soil": np.array(
        [0.060, 0.080, 0.110, 0.150, 0.170, 0.190, 0.210, 0.230, 0.240, 0.250, 0.320, 0.270]
    ),
    "water_clear": np.array(
        [0.050, 0.045, 0.040, 0.020, 0.015, 0.010, 0.008, 0.007, 0.006, 0.004, 0.004, 0.003]
    ),
    "water_turbid": np.array(
        [0.060, 0.060, 0.080, 0.070, 0.060, 0.030, 0.025, 0.022, 0.020, 0.012, 0.006, 0.004]
    ),
    "urban": np.array(
        [0.090, 0.100, 0.120, 0.140, 0.150, 0.170, 0.180, 0.200, 0.200, 0.210, 0.240, 0.210]
    ),
    "snow": np.array(
        [0.900, 0.900, 0.880, 0.850, 0.830, 0.800, 0.780, 0.750, 0.740, 0.650, 0.080, 0.050]
    ),
}
ENDMEMBER_NAMES = tuple(ENDMEMBERS)
GREEN_ENDMEMBERS = ("green_broadleaf", "green_conifer", "green_herb")
SOIL_LIKE_ENDMEMBERS = ("dry_vegetation", "litter", "soil")
WATER_ENDMEMBERS = ("water_clear", "water_turbid")

# Relative cloud-top reflectance by wavelength (flat in the VNIR, lower in the SWIR).
_CLOUD_SHAPE = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.95, 0.75, 0.55])
CIRRUS_BAND_UM = (1.35, 1.40)


def is_cirrus_band(wavelength_um: float) -> bool:
    """The 1.37 um band sees only high clouds: the surface is hidden by water vapour."""
    return CIRRUS_BAND_UM[0] <= wavelength_um <= CIRRUS_BAND_UM[1]


def endmember_reflectance(name: str, wavelength_um: float) -> float:
    """Reflectance of one endmember at a band centre (linear between library samples)."""
    return float(np.interp(wavelength_um, _WAVELENGTH_UM, ENDMEMBERS[name]))


def cloud_shape(wavelength_um: float) -> float:
    if is_cirrus_band(wavelength_um):
        return 0.45
    return float(np.interp(wavelength_um, _WAVELENGTH_UM, _CLOUD_SHAPE))


def mix(fractions: dict[str, np.ndarray], wavelength_um: float) -> np.ndarray:
    """Surface reflectance at one band from endmember fractions (which sum to 1)."""
    if is_cirrus_band(wavelength_um):
        shape = next(iter(fractions.values())).shape
        return np.full(shape, 0.002) + 0.004 * fractions.get("snow", 0.0)
    out = None
    for name, frac in fractions.items():
        term = frac * endmember_reflectance(name, wavelength_um)
        out = term if out is None else out + term
    return out
