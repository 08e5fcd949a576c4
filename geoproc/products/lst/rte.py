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
    """One-sigma error of a given per-pixel atmosphere, for error propagation.

    Zero by default: the stated uncertainty is the retrieval's own error given its atmosphere,
    the way it is judged against the USGS C2 ST (Cook et al. 2014), which uses that same
    atmosphere. The reanalysis' own error (about 0.02 in tau and 10 % in the path radiances,
    Cook et al. 2014; the basis of the USGS ST_QA, Laraby & Schott 2018) would state kelvins
    where the retrieval differs from the reference by tenths (issue 16: 10.2 K stated for a
    0.8 K error); pass ``AtmosphereUncertainty(0.02, 0.10, 0.10)`` for an error budget
    against ground truth.
    """

    transmittance: float = 0.0
    """Absolute one-sigma error of tau."""
    upwelling_relative: float = 0.0
    """Relative one-sigma error of Lu."""
    downwelling_relative: float = 0.0
    """Relative one-sigma error of Ld."""


@dataclass(frozen=True)
class SceneAtmosphereVariability:
    """How far the atmosphere of a pixel strays from a scene-mean atmosphere (one sigma).

    Within a Landsat scene the column water vapour, and with it the band atmosphere, varies
    with terrain and weather (the USGS per-pixel layers, Cook et al. 2014). Its effect is
    modelled as a fraction of the atmospheric correction itself (LST with the atmosphere minus
    LST without it): the correction scales with the water vapour column (Barsi et al. 2003,
    2005), so a relative spread of the column gives a proportional spread of the correction.
    Unlike a perturbation of tau, Lu and Ld, this stays linear as tau falls in humid scenes.
    The fraction is the RMS over real Landsat C2 L2 scenes (each scene one draw) of
    RMS(LST with the scene-mean layers - LST with the per-pixel layers) / RMS(correction)
    (`geoproc.products.lst.real_cases.calibrate`): 0.041 (Greenland L8), 0.093 (Australia L8),
    0.109 (ETM+), 0.225 (TM), RMS 0.135 (their median, 0.10, understates a one-sigma).
    """

    correction_relative: float = 0.135
    """One-sigma spread of the atmospheric correction inside a scene, relative to it."""


def forward_rte(lst, emissivity, *, transmittance, upwelling, downwelling, band: ThermalBand):
    """At-sensor brightness temperature (K) that a surface at `lst` (K) would show."""
    surface = (
        emissivity * radiance_from_bt(lst + band.lst_offset_k, band)
        + (1.0 - emissivity) * downwelling
    )
    return bt_from_radiance(transmittance * surface + upwelling, band)


def invert_rte(bt, emissivity, *, transmittance, upwelling, downwelling, band: ThermalBand):
    """LST (K) from at-sensor brightness temperature (K), emissivity and the band atmosphere.

    NaN where any input is NaN or where the atmosphere leaves no positive surface radiance.
    """
    sensor = radiance_from_bt(bt, band)
    with np.errstate(divide="ignore", invalid="ignore"):
        leaving = (sensor - upwelling) / transmittance - (1.0 - emissivity) * downwelling
        return bt_from_radiance(leaving / emissivity, band) - band.lst_offset_k


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
    correction_sigma: float = 0.0,
):
    """One-sigma LST uncertainty (K): emissivity and atmosphere errors propagated in quadrature.

    `correction_sigma` adds the in-scene spread of a scene-mean atmosphere
    (`SceneAtmosphereVariability`): that fraction of ``|LST - LST without atmosphere|``, with
    ``LST without atmosphere = T(L / eps)``.

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
        propagated = abs(dt_db) * np.sqrt(sum(t * t for t in terms))
        if not correction_sigma:
            return propagated
        correction = lst - bt_from_radiance(sensor / emissivity, band)
        return np.sqrt(propagated**2 + (correction_sigma * correction) ** 2)
