"""LST when the band atmosphere is unknown: generalised single-channel and split-window methods.

Both need only the total column water vapour w (g cm-2) besides brightness temperature and
emissivity, which is what a user has when no radiative transfer run exists.

* Generalised single-channel (SC), Jimenez-Munoz & Sobrino (2003, JGR 108:4688), Jimenez-Munoz
  et al. (2009, IEEE TGRS 47:339) with each sensor's own coefficients: TM band 6 and ETM+
  band 6 from Jimenez-Munoz et al. (2009, TIGR1761 database; b_gamma 1256 K and 1277 K),
  TIRS band 10 from Jimenez-Munoz et al. (2014, IEEE GRSL 11:1840, GAPRI database):
  ``LST = gamma * ((psi1 * L + psi2) / eps + psi3) + delta``, ``gamma = T^2 / (b_gamma L)``,
  ``delta = T - T^2 / b_gamma``, ``psi_i = c_i1 w^2 + c_i2 w + c_i3`` (``b_gamma = 1324 K``
  for TIRS). The sensor is told apart by the band's effective wavelength
  (`uncertainty.sensor_of_wavelength`).
* Split-window (SW), Jimenez-Munoz & Sobrino (2008, Int. J. Remote Sens. 29:5225) with the
  Landsat 8 coefficients of Jimenez-Munoz et al. (2014):
  ``LST = T10 + c1 (T10 - T11) + c2 (T10 - T11)^2 + c0 + (c3 + c4 w)(1 - eps)
  + (c5 + c6 w) d_eps``, ``eps`` the mean and ``d_eps = eps10 - eps11``.

The published algorithm errors (about 1 K for the SC at w < 2 g cm-2, growing quickly with
w, about 1.5 K for the SW) are added in quadrature to propagated emissivity and w errors and
the sensor noise (`lst_uncertainty`). The w error is propagated through the SC at two sigma
points, w - sigma_w and w + sigma_w (the unscented transform, Julier & Uhlmann 1997): the
psi functions are quadratic in w, so the linear derivative at the climatological w can be
near zero (ETM+ at 2 g cm-2) while a w one sigma away changes LST by a kelvin.
"""

from __future__ import annotations

import numpy as np

from geoproc.products.lst.planck import ThermalBand, radiance_from_bt
from geoproc.products.lst.uncertainty import sensor_of_wavelength

SC_B10_PSI = (
    (0.04019, 0.02916, 1.01523),
    (-0.38333, -1.50294, 0.20324),
    (0.00918, 1.36072, -0.27514),
)
"""Rows psi1..psi3, columns (w^2, w, 1): Jimenez-Munoz et al. (2014) for TIRS band 10."""
SC_B10_B_GAMMA = 1324.0
"""b_gamma for TIRS band 10, K (Jimenez-Munoz et al. 2014)."""
SC_ETM_PSI = (
    (0.06518, 0.00683, 1.02717),
    (-0.53003, -1.25866, 0.10490),
    (-0.01965, 1.36947, -0.24310),
)
"""psi1..psi3 for Landsat 7 ETM+ band 6 (Jimenez-Munoz et al. 2009, TIGR1761), b_gamma 1277 K."""
SC_TM_PSI = (
    (0.07518, -0.00492, 1.03189),
    (-0.59600, -1.22554, 0.08104),
    (-0.02767, 1.43740, -0.25844),
)
"""psi1..psi3 for Landsat 5 TM band 6 (Jimenez-Munoz et al. 2009, TIGR1761), b_gamma 1256 K;
used for Landsat 4 TM too (same band design; its own set is not in this module)."""
REITAN_A, REITAN_B = 0.1102, 0.0614
"""ln w (cm) = A + B Td (deg C): precipitable water from the surface dew point (Reitan 1963,
J. Appl. Meteorol. 2:776); B is the Clausius-Clapeyron rate, about 6 % per kelvin."""
DEFAULT_DEWPOINT_DEPRESSION = 26.0
"""Brightness temperature minus the surface dew point, K, when no water vapour is known:
daytime land surface above the air (about 5-15 K at the Landsat overpass) plus the air's
dew-point depression (about 10 K). Fitted on four real Landsat C2 L2 scenes
(`real_cases.calibrate`: 26 K on all four; 26, 27, 27 and 15 K leaving each out, the 15 K
without the hot, dry TM scene); a cold, dry ice sheet then gets about 0.15 g cm-2, not the
2 g cm-2 of a fixed climatology. The real-case rows are scored with the held-out values."""
DEWPOINT_DEPRESSION_SIGMA = 8.0
"""One-sigma spread of that depression, K (humid to dry air masses): w is uncertain by a factor
exp(REITAN_B * 8) = 1.6."""
SW_L8_COEFFICIENTS = (-0.268, 1.378, 0.183, 54.30, -2.238, -129.20, 16.40)
"""c0..c6 of the Landsat 8 split-window (Jimenez-Munoz et al. 2014)."""
DEFAULT_WATER_VAPOUR = 2.0
"""Climatological total column water vapour (g cm-2), used when none is known and the scene
has no brightness temperature to estimate it from (`climatological_water_vapour`)."""
DEFAULT_WATER_VAPOUR_SIGMA = 1.5
"""One-sigma error of that fixed w."""
KNOWN_WATER_VAPOUR_SIGMA = 0.5
"""One-sigma error of a w from reanalysis or a user (typical reanalysis error)."""


def climatological_water_vapour(bt_k, depression_k: float = DEFAULT_DEWPOINT_DEPRESSION):
    """(w, one-sigma w) in g cm-2 from a brightness temperature (K).

    Without any atmosphere, the surface temperature bounds the water vapour above it (warm
    air can hold more; Clausius-Clapeyron): the surface dew point is taken as the brightness
    temperature minus `depression_k`, and w follows Reitan (1963).
    """
    with np.errstate(invalid="ignore", over="ignore"):
        w = np.exp(REITAN_A + REITAN_B * (bt_k - 273.15 - depression_k))
    return w, w * REITAN_B * DEWPOINT_DEPRESSION_SIGMA


def sc_coefficients(band: ThermalBand) -> tuple[tuple, float]:
    """(psi coefficient rows, b_gamma in K) of the sensor whose thermal band `band` is."""
    sensor = sensor_of_wavelength(band.center_wavelength_um)
    return {
        "tm": (SC_TM_PSI, 1256.0),
        "etm": (SC_ETM_PSI, 1277.0),
        "tirs": (SC_B10_PSI, SC_B10_B_GAMMA),
    }[sensor]


def sc_transmittance(water_vapour, *, band: ThermalBand):
    """Band transmittance the SC assumes at `water_vapour`: psi1 = 1 / tau (JM 2003)."""
    c2, c1, c0 = sc_coefficients(band)[0][0]
    w = water_vapour
    return 1.0 / (c2 * w * w + c1 * w + c0)


def single_channel_lst(bt, emissivity, water_vapour, *, band: ThermalBand):
    """Generalised single-channel LST (K) from the thermal band's brightness temperature (K)."""
    radiance = radiance_from_bt(bt, band)
    w = water_vapour
    rows, b_gamma = sc_coefficients(band)
    psi = [c2 * w * w + c1 * w + c0 for c2, c1, c0 in rows]
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = bt * bt / (b_gamma * radiance)
        delta = bt - bt * bt / b_gamma
        return gamma * ((psi[0] * radiance + psi[1]) / emissivity + psi[2]) + delta


def split_window_lst(bt11, bt12, emissivity11, emissivity12, water_vapour):
    """Split-window LST (K) from TIRS band 10/11 brightness temperatures (K)."""
    c0, c1, c2, c3, c4, c5, c6 = SW_L8_COEFFICIENTS
    diff = bt11 - bt12
    mean_eps = 0.5 * (emissivity11 + emissivity12)
    d_eps = emissivity11 - emissivity12
    w = water_vapour
    return (
        bt11
        + c1 * diff
        + c2 * diff * diff
        + c0
        + (c3 + c4 * w) * (1 - mean_eps)
        + (c5 + c6 * w) * d_eps
    )


def single_channel_uncertainty(
    bt, emissivity, emissivity_sigma, water_vapour, water_vapour_sigma, *, band: ThermalBand
):
    """One-sigma SC LST error (K): algorithm error plus propagated emissivity and w errors.

    The w term is the RMS change of LST at the sigma points ``w -/+ sigma_w`` (w kept >= 0).
    """
    h = 1e-3
    d_eps = (
        single_channel_lst(bt, emissivity + h, water_vapour, band=band)
        - single_channel_lst(bt, emissivity - h, water_vapour, band=band)
    ) / (2 * h)
    centre = single_channel_lst(bt, emissivity, water_vapour, band=band)
    low = np.maximum(water_vapour - water_vapour_sigma, 0.0)
    high = water_vapour + water_vapour_sigma
    w_term_sq = 0.5 * (
        (single_channel_lst(bt, emissivity, low, band=band) - centre) ** 2
        + (single_channel_lst(bt, emissivity, high, band=band) - centre) ** 2
    )
    algorithm = 1.0 + np.maximum(water_vapour - 2.0, 0.0)
    return np.sqrt(algorithm**2 + (d_eps * emissivity_sigma) ** 2 + w_term_sq)


def split_window_uncertainty(
    emissivity11, emissivity12, sigma11, sigma12, water_vapour, water_vapour_sigma
):
    """One-sigma SW LST error (K): algorithm error plus propagated emissivity and w errors."""
    _, _, _, c3, c4, c5, c6 = SW_L8_COEFFICIENTS
    w = water_vapour
    # d LST / d eps11 and d eps12 from the linear emissivity terms of the SW formula.
    d11 = -0.5 * (c3 + c4 * w) + (c5 + c6 * w)
    d12 = -0.5 * (c3 + c4 * w) - (c5 + c6 * w)
    mean_eps = 0.5 * (emissivity11 + emissivity12)
    d_w = c4 * (1 - mean_eps) + c6 * (emissivity11 - emissivity12)
    algorithm = 1.5
    # Both band emissivities come from the same classification, so their errors are
    # taken as fully correlated (independent errors would overstate the d_eps error).
    emissivity_term = d11 * sigma11 + d12 * sigma12
    return np.sqrt(algorithm**2 + emissivity_term**2 + (d_w * water_vapour_sigma) ** 2)
