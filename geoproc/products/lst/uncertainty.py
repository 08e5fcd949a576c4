"""The LST uncertainty budget: which error sources `lst_uncertainty` holds, and the sensor noise.

``lst_uncertainty`` is one sigma of the retrieved LST, the quadrature sum of independent terms
(GUM, JCGM 100:2008), each propagated through the retrieval that ran:

* emissivity: the NDVI-THM spread per surface class (Sobrino et al. 2008, IEEE TGRS 46:316;
  `emissivity.CLASS_UNCERTAINTY`, the RMS of NDVI-THM minus the ASTER GED-based USGS ST_EMIS on
  real Landsat C2 L2 scenes), through ``dLST/d eps`` of the RTE (`rte.rte_uncertainty`) or of
  the single-channel / split-window formula (Jimenez-Munoz et al. 2009, 2014);
* atmosphere, by what is known of it:
  - per pixel: the atmosphere map's own error (`rte.AtmosphereUncertainty`, zero by default);
  - one value per scene: its spread inside the scene (`rte.SceneAtmosphereVariability`: a
    fraction of the atmospheric correction, which scales with the water vapour column, Barsi
    et al. 2003, 2005). Mostly scene-wide (weather), so it is stated in full at every pixel;
  - none: the water vapour is estimated from the scene's own brightness temperatures
    (`single_channel.climatological_water_vapour`, Reitan 1963 with a dew-point depression)
    and its spread propagated through the single-channel method at two sigma points, plus the
    method's own algorithm error (Jimenez-Munoz et al. 2009, 2014);
* sensor noise: the band's noise-equivalent delta temperature (`NEDT_K`) divided by the
  transmittance and emissivity that scale the surface signal (`sensor_noise_sigma`).

Against a reference made from the same radiances (the USGS C2 ST), the sensor noise is common
to both and cancels; it is kept because the uncertainty is meant against the true LST.
"""

from __future__ import annotations

import numpy as np

NEDT_K = {"tirs": 0.05, "etm": 0.22, "tm": 0.20}
"""Noise-equivalent delta temperature at about 300 K, K: TIRS band 10 about 0.05 K on orbit
(Montanaro et al. 2014, Remote Sens. 6:11753), ETM+ band 6 about 0.22 K and TM band 6 about
0.2 K (Barsi et al. 2003, SPIE 5151; Landsat 7 Science Data Users Handbook)."""


def sensor_of_wavelength(center_wavelength_um: float) -> str:
    """``tm`` (11.45 um), ``etm`` (11.27 um) or ``tirs`` (10.90 um) from a band's wavelength."""
    if center_wavelength_um >= 11.40:
        return "tm"
    if center_wavelength_um >= 11.20:
        return "etm"
    return "tirs"


def sensor_noise_sigma(center_wavelength_um: float, emissivity, transmittance=1.0):
    """One-sigma LST error (K) from the sensor's NEdT: a TOA change seen through tau * eps."""
    nedt = NEDT_K[sensor_of_wavelength(center_wavelength_um)]
    with np.errstate(divide="ignore", invalid="ignore"):
        return nedt / (transmittance * emissivity)


def quadrature(*terms):
    """Square root of the sum of squares of independent one-sigma terms."""
    return np.sqrt(sum(t * t for t in terms))
