"""Single-channel and split-window LST: formula checks and consistency with the RTE."""

from __future__ import annotations

import numpy as np
import pytest

from geoproc.products.lst import single_channel as sc
from geoproc.products.lst.planck import thermal_band
from geoproc.products.lst.rte import forward_rte, invert_rte


@pytest.mark.parametrize(
    ("lst", "eps", "tau", "lu", "ld"),
    [(300.0, 0.97, 0.85, 0.9, 1.5), (280.0, 0.99, 0.93, 0.4, 0.7), (305.0, 0.96, 0.8, 1.4, 2.4)],
)
def test_single_channel_with_exact_psi_reproduces_rte(monkeypatch, lst, eps, tau, lu, ld):
    """With psi1 = 1/tau, psi2 = -Ld - Lu/tau, psi3 = Ld (JM 2003), the SC is the linearised RTE."""
    band = thermal_band("lwir11")
    monkeypatch.setattr(sc, "SC_B10_PSI", ((0, 0, 1 / tau), (0, 0, -ld - lu / tau), (0, 0, ld)))
    bt = forward_rte(lst, eps, transmittance=tau, upwelling=lu, downwelling=ld, band=band)
    got = sc.single_channel_lst(bt, eps, 1.0, band=band)
    exact = invert_rte(bt, eps, transmittance=tau, upwelling=lu, downwelling=ld, band=band)
    assert abs(got - exact) < 0.3


def test_single_channel_psi_polynomials_hand_computed():
    band = thermal_band("lwir11")
    w, bt, eps = 1.5, 290.0, 0.98
    psi1 = 0.04019 * w**2 + 0.02916 * w + 1.01523
    psi2 = -0.38333 * w**2 - 1.50294 * w + 0.20324
    psi3 = 0.00918 * w**2 + 1.36072 * w - 0.27514
    radiance = 774.8853 / (np.exp(1321.0789 / bt) - 1)
    gamma = bt**2 / (1324.0 * radiance)
    delta = bt - bt**2 / 1324.0
    expected = gamma * ((psi1 * radiance + psi2) / eps + psi3) + delta
    assert sc.single_channel_lst(bt, eps, w, band=band) == pytest.approx(expected, abs=1e-9)


def test_split_window_hand_computed():
    t10, t11, e10, e11, w = 295.0, 293.5, 0.975, 0.98, 2.0
    d = t10 - t11
    expected = (
        t10
        + 1.378 * d
        + 0.183 * d * d
        - 0.268
        + (54.30 - 2.238 * w) * (1 - (e10 + e11) / 2)
        + (-129.20 + 16.40 * w) * (e10 - e11)
    )
    assert sc.split_window_lst(t10, t11, e10, e11, w) == pytest.approx(expected, abs=1e-9)


def test_lower_emissivity_means_warmer_surface_in_both_methods():
    band = thermal_band("lwir11")
    assert (
        sc.single_channel_lst(290.0, 0.95, 1.0, band=band)
        > sc.single_channel_lst(290.0, 0.99, 1.0, band=band) + 1
    )
    assert (
        sc.split_window_lst(290.0, 289.0, 0.95, 0.95, 1.0)
        > sc.split_window_lst(290.0, 289.0, 0.99, 0.99, 1.0) + 1
    )


def test_uncertainties_include_algorithm_error_and_grow_with_water_vapour():
    band = thermal_band("lwir11")
    dry = sc.single_channel_uncertainty(290.0, 0.98, 0.005, 1.0, 0.5, band=band)
    wet = sc.single_channel_uncertainty(290.0, 0.98, 0.005, 4.0, 0.5, band=band)
    assert 1.0 < dry < wet
    sw = sc.split_window_uncertainty(0.98, 0.985, 0.005, 0.005, 2.0, 0.5)
    assert sw >= 1.0
