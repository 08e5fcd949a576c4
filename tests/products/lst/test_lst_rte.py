"""RTE inversion: forward-model round trips, the emissivity effect in kelvin, error propagation."""

from __future__ import annotations

import numpy as np
import pytest

from geoproc.products.lst.planck import thermal_band
from geoproc.products.lst.rte import AtmosphereUncertainty, forward_rte, invert_rte, rte_uncertainty


def _grid():
    lst, eps, tau, lu, ld = np.meshgrid(
        np.linspace(240.0, 330.0, 7),
        np.array([0.93, 0.96, 0.985, 0.995]),
        np.array([0.45, 0.7, 0.95]),
        np.array([0.1, 1.0, 3.0]),
        np.array([0.2, 1.5, 5.0]),
        indexing="ij",
    )
    return lst.ravel(), eps.ravel(), tau.ravel(), lu.ravel(), ld.ravel()


@pytest.mark.parametrize("name", ["lwir11", "lwir12"])
def test_round_trip_through_forward_model_within_0_01_k(name):
    band = thermal_band(name)
    lst, eps, tau, lu, ld = _grid()
    atm = {"transmittance": tau, "upwelling": lu, "downwelling": ld}
    bt = forward_rte(lst, eps, band=band, **atm)
    assert np.isfinite(bt).all()
    back = invert_rte(bt, eps, band=band, **atm)
    assert np.max(np.abs(back - lst)) < 0.01


def test_forward_model_matches_hand_written_rte():
    band = thermal_band("lwir11")
    k1, k2 = 774.8853, 1321.0789
    lst, eps, tau, lu, ld = 295.0, 0.97, 0.8, 1.2, 2.1
    b = k1 / (np.exp(k2 / lst) - 1)
    sensor = tau * (eps * b + (1 - eps) * ld) + lu
    expected_bt = k2 / np.log(k1 / sensor + 1)
    bt = forward_rte(lst, eps, transmittance=tau, upwelling=lu, downwelling=ld, band=band)
    assert bt == pytest.approx(expected_bt, abs=1e-9)


def test_lst_exceeds_bt_by_the_emissivity_effect_in_clear_air():
    """Units check: a pylandtemp-style metre/micrometre mix gives LST ~ BT; physics gives ~2 K."""
    band = thermal_band("lwir11")
    bt, eps = 300.0, 0.97
    lst = invert_rte(bt, eps, transmittance=1.0, upwelling=0.0, downwelling=0.0, band=band)
    # linearised Planck: dT = (1 - eps)/eps * T^2/K2 * (1 - exp(-K2/T))
    expected = (1 - eps) / eps * bt**2 / band.k2 * (1 - np.exp(-band.k2 / bt))
    assert lst - bt == pytest.approx(expected, abs=0.05)
    assert 1.8 < lst - bt < 2.4
    blackbody = invert_rte(bt, 1.0, transmittance=1.0, upwelling=0.0, downwelling=0.0, band=band)
    assert blackbody == pytest.approx(bt, abs=1e-9)


def test_masked_inputs_stay_nan():
    band = thermal_band("lwir11")
    out = invert_rte(
        np.array([np.nan, 290.0, 290.0]),
        np.array([0.98, np.nan, 0.98]),
        transmittance=np.array([0.9, 0.9, np.nan]),
        upwelling=0.5,
        downwelling=1.0,
        band=band,
    )
    assert np.isnan(out).all()


def test_uncertainty_grows_with_emissivity_and_atmosphere_errors():
    band = thermal_band("lwir11")
    atm = {"transmittance": 0.8, "upwelling": 1.5, "downwelling": 2.5, "band": band}
    zero = AtmosphereUncertainty(
        transmittance=0.0, upwelling_relative=0.0, downwelling_relative=0.0
    )
    only_eps = rte_uncertainty(300.0, 0.97, 0.01, atmosphere_sigma=zero, **atm)
    # hand check: finite difference of the inversion for d eps = 0.01
    ref = abs(invert_rte(300.0, 0.98, **atm) - invert_rte(300.0, 0.96, **atm)) / 2
    assert only_eps == pytest.approx(ref, rel=0.02)
    assert 0.3 < only_eps < 1.0
    # the default treats the given atmosphere as exact (the reference shares it) ...
    assert rte_uncertainty(300.0, 0.97, 0.01, **atm) == pytest.approx(only_eps)
    # ... the reanalysis budget of Cook et al. (2014) adds kelvins ...
    cook = AtmosphereUncertainty(
        transmittance=0.02, upwelling_relative=0.1, downwelling_relative=0.1
    )
    both = rte_uncertainty(300.0, 0.97, 0.01, atmosphere_sigma=cook, **atm)
    assert both > only_eps + 0.2
    # ... and a scene-mean atmosphere adds 10 % of the atmospheric correction in quadrature
    correction = invert_rte(300.0, 0.97, **atm) - invert_rte(
        300.0, 0.97, transmittance=1.0, upwelling=0.0, downwelling=0.0, band=band
    )
    spread = rte_uncertainty(300.0, 0.97, 0.01, correction_sigma=0.1, **atm)
    assert spread == pytest.approx(np.hypot(only_eps, 0.1 * correction), rel=1e-6)


def test_analytic_uncertainty_matches_finite_differences_of_the_inversion():
    band = thermal_band("lwir11")
    bt, eps, sig_eps = 291.0, 0.965, 0.008
    atm = {"transmittance": 0.75, "upwelling": 2.0, "downwelling": 3.1}
    sig = AtmosphereUncertainty(
        transmittance=0.03, upwelling_relative=0.1, downwelling_relative=0.2
    )
    h = 1e-4

    def slope(name):
        lo, hi = dict(atm), dict(atm)
        lo[name] -= h
        hi[name] += h
        return (invert_rte(bt, eps, band=band, **hi) - invert_rte(bt, eps, band=band, **lo)) / (
            2 * h
        )

    d_eps = (
        invert_rte(bt, eps + h, band=band, **atm) - invert_rte(bt, eps - h, band=band, **atm)
    ) / (2 * h)
    expected = np.sqrt(
        (d_eps * sig_eps) ** 2
        + (slope("transmittance") * 0.03) ** 2
        + (slope("upwelling") * 0.1 * 2.0) ** 2
        + (slope("downwelling") * 0.2 * 3.1) ** 2
    )
    got = rte_uncertainty(bt, eps, sig_eps, band=band, atmosphere_sigma=sig, **atm)
    assert got == pytest.approx(expected, rel=1e-4)
