"""LST when the band atmosphere is unknown: generalised single-channel and split-window methods.

Both need only the total column water vapour w (g cm-2) besides brightness temperature and
emissivity, which is what a user has when no radiative transfer run exists.

* Generalised single-channel (SC), Jimenez-Munoz & Sobrino (2003, JGR 108:4688), Jimenez-Munoz
  et al. (2009, IEEE TGRS 47:339) with the Landsat 8 TIRS band 10 coefficients of
  Jimenez-Munoz et al. (2014, IEEE GRSL 11:1840, GAPRI database):
  ``LST = gamma * ((psi1 * L + psi2) / eps + psi3) + delta``, ``gamma = T^2 / (b_gamma L)``,
  ``delta = T - T^2 / b_gamma``, ``psi_i = c_i1 w^2 + c_i2 w + c_i3``, ``b_gamma = 1324 K``.
* Split-window (SW), Jimenez-Munoz & Sobrino (2008, Int. J. Remote Sens. 29:5225) with the
  Landsat 8 coefficients of Jimenez-Munoz et al. (2014):
  ``LST = T10 + c1 (T10 - T11) + c2 (T10 - T11)^2 + c0 + (c3 + c4 w)(1 - eps)
  + (c5 + c6 w) d_eps``, ``eps`` the mean and ``d_eps = eps10 - eps11``.

The published algorithm errors (about 1 K for the SC at w < 2 g cm-2, growing quickly with
w, about 1.5 K for the SW) are added in quadrature to propagated emissivity and w errors.
"""

from __future__ import annotations

import numpy as np

from geoproc.products.lst.planck import ThermalBand, radiance_from_bt

SC_B10_PSI = (
    (0.04019, 0.02916, 1.01523),
    (-0.38333, -1.50294, 0.20324),
    (0.00918, 1.36072, -0.27514),
)
"""Rows psi1..psi3, columns (w^2, w, 1): Jimenez-Munoz et al. (2014) for TIRS band 10."""
SC_B10_B_GAMMA = 1324.0
"""b_gamma for TIRS band 10, K (Jimenez-Munoz et al. 2014)."""
SW_L8_COEFFICIENTS = (-0.268, 1.378, 0.183, 54.30, -2.238, -129.20, 16.40)
"""c0..c6 of the Landsat 8 split-window (Jimenez-Munoz et al. 2014)."""
DEFAULT_WATER_VAPOUR = 2.0
"""Climatological total column water vapour (g cm-2), used when none is known."""
DEFAULT_WATER_VAPOUR_SIGMA = 1.5
"""One-sigma error of the climatological w."""
KNOWN_WATER_VAPOUR_SIGMA = 0.5
"""One-sigma error of a w from reanalysis or a user (typical reanalysis error)."""


def single_channel_lst(bt, emissivity, water_vapour, *, band: ThermalBand):
    """Generalised single-channel LST (K) from TIRS band 10 brightness temperature (K)."""
    radiance = radiance_from_bt(bt, band)
    w = water_vapour
    psi = [c2 * w * w + c1 * w + c0 for c2, c1, c0 in SC_B10_PSI]
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = bt * bt / (SC_B10_B_GAMMA * radiance)
        delta = bt - bt * bt / SC_B10_B_GAMMA
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
    """One-sigma SC LST error (K): algorithm error plus propagated emissivity and w errors."""
    h = 1e-3
    d_eps = (
        single_channel_lst(bt, emissivity + h, water_vapour, band=band)
        - single_channel_lst(bt, emissivity - h, water_vapour, band=band)
    ) / (2 * h)
    d_w = (
        single_channel_lst(bt, emissivity, water_vapour + h, band=band)
        - single_channel_lst(bt, emissivity, water_vapour - h, band=band)
    ) / (2 * h)
    algorithm = 1.0 + np.maximum(water_vapour - 2.0, 0.0)
    return np.sqrt(algorithm**2 + (d_eps * emissivity_sigma) ** 2 + (d_w * water_vapour_sigma) ** 2)


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
