"""Land surface temperature by inverting the thermal radiative transfer equation (RTE).

When the atmosphere of the acquisition is known (transmittance tau, upwelling radiance Lu,
downwelling radiance Ld of the band, e.g. from reanalysis through MODTRAN as in the
Landsat Collection 2 surface temperature product, Cook et al. 2014, Remote Sens. 6:11244;
Barsi et al. 2005 atmospheric correction parameter calculator), the at-sensor radiance is

    L_sensor = tau * (eps * B(LST) + (1 - eps) * Ld) + Lu

so ``B(LST) = ((L_sensor - Lu) / tau - (1 - eps) * Ld) / eps`` and LST follows from the
inverse band Planck law (see `lst_planck`). All radiances are W m-2 sr-1 um-1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geoproc.products.lst.planck import ThermalBand, bt_from_radiance, radiance_from_bt


@dataclass(frozen=True)
class AtmosphereUncertainty:
    """One-sigma uncertainty of a known atmosphere, for error propagation.

    Defaults follow the reanalysis-driven error budget of Cook et al. (2014): a few
    hundredths in transmittance and ~10 % in the path radiances.
    """

    transmittance: float = 0.02
    """Absolute one-sigma error of tau."""
    upwelling_relative: float = 0.10
    """Relative one-sigma error of Lu."""
    downwelling_relative: float = 0.10
    """Relative one-sigma error of Ld."""


def forward_rte(lst, emissivity, *, transmittance, upwelling, downwelling, band: ThermalBand):
    """At-sensor brightness temperature (K) that a surface at `lst` (K) would show."""
    surface = emissivity * radiance_from_bt(lst, band) + (1.0 - emissivity) * downwelling
    return bt_from_radiance(transmittance * surface + upwelling, band)


def invert_rte(bt, emissivity, *, transmittance, upwelling, downwelling, band: ThermalBand):
    """LST (K) from at-sensor brightness temperature (K), emissivity and the band atmosphere.

    NaN where any input is NaN or where the atmosphere leaves no positive surface radiance.
    """
    sensor = radiance_from_bt(bt, band)
    with np.errstate(divide="ignore", invalid="ignore"):
        leaving = (sensor - upwelling) / transmittance - (1.0 - emissivity) * downwelling
        return bt_from_radiance(leaving / emissivity, band)


def rte_uncertainty(
    bt,
    emissivity,
    emissivity_sigma,
    *,
    transmittance,
    upwelling,
    downwelling,
    band: ThermalBand,
    atmosphere_sigma: AtmosphereUncertainty = AtmosphereUncertainty(),
):
    """One-sigma LST uncertainty (K): emissivity and atmosphere errors propagated in quadrature.

    Analytic partial derivatives of the inversion: with ``B = L_surface / eps`` and
    ``dT/dB = T^2 K1 / (K2 B (B + K1))`` (the inverse band Planck law), ``dB/d eps =
    (Ld - B) / eps``, ``dB/d tau = -(L - Lu) / (tau^2 eps)``, ``dB/d Lu = -1 / (tau eps)``,
    ``dB/d Ld = -(1 - eps) / eps``.
    """
    sensor = radiance_from_bt(bt, band)
    with np.errstate(divide="ignore", invalid="ignore"):
        blackbody = (
            (sensor - upwelling) / transmittance - (1.0 - emissivity) * downwelling
        ) / emissivity
        lst = bt_from_radiance(blackbody, band)
        dt_db = lst * lst * band.k1 / (band.k2 * blackbody * (blackbody + band.k1))
        terms = (
            (downwelling - blackbody) / emissivity * emissivity_sigma,
            (sensor - upwelling)
            / (transmittance * transmittance * emissivity)
            * atmosphere_sigma.transmittance,
            atmosphere_sigma.upwelling_relative * abs(upwelling) / (transmittance * emissivity),
            (1.0 - emissivity)
            / emissivity
            * atmosphere_sigma.downwelling_relative
            * abs(downwelling),
        )
        return abs(dt_db) * np.sqrt(sum(t * t for t in terms))
