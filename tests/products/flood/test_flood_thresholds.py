"""Otsu, Kittler-Illingworth and the two-Gaussian fit against analytic values."""

from __future__ import annotations

import numpy as np
import pytest

from geoproc.products import thresholds as T


def _bayes_threshold(m1, s1, w1, m2, s2, w2) -> float:
    """Analytic crossing of w1 N(m1, s1) and w2 N(m2, s2) between the means."""
    a = 1 / (2 * s2**2) - 1 / (2 * s1**2)
    b = m1 / s1**2 - m2 / s2**2
    c = m2**2 / (2 * s2**2) - m1**2 / (2 * s1**2) + np.log((w1 * s2) / (w2 * s1))
    roots = np.roots([a, b, c]) if abs(a) > 1e-12 else np.array([-c / b])
    roots = roots[np.isreal(roots)].real
    return float(roots[(roots > m1) & (roots < m2)][0])


def test_otsu_on_symmetric_bimodal_sample_is_the_midpoint():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(-20, 2, 50_000), rng.normal(-8, 2, 50_000)]
    assert T.otsu_threshold(x) == pytest.approx(-14.0, abs=0.25)
    assert T.kittler_illingworth_threshold(x) == pytest.approx(-14.0, abs=0.25)


def test_kittler_illingworth_follows_unequal_classes_where_otsu_does_not():
    rng = np.random.default_rng(1)
    m1, s1, w1, m2, s2, w2 = -20.0, 1.5, 0.2, -8.0, 3.0, 0.8
    x = np.r_[rng.normal(m1, s1, 20_000), rng.normal(m2, s2, 80_000)]
    analytic = _bayes_threshold(m1, s1, w1, m2, s2, w2)
    ki = T.kittler_illingworth_threshold(x)
    assert ki == pytest.approx(analytic, abs=0.5)
    assert abs(T.otsu_threshold(x) - analytic) > 1.5  # Otsu is pulled towards the big class


def test_fit_gaussian_pair_recovers_parameters_and_ashman_d():
    rng = np.random.default_rng(2)
    x = np.r_[rng.normal(-22, 1.0, 30_000), rng.normal(-9, 2.0, 70_000)]
    fit = T.fit_gaussian_pair(x)
    assert fit.mean == pytest.approx((-22, -9), abs=0.15)
    assert fit.std == pytest.approx((1.0, 2.0), abs=0.1)
    assert fit.weight == pytest.approx((0.3, 0.7), abs=0.02)
    assert fit.ashman_d == pytest.approx(np.sqrt(2) * 13 / np.sqrt(5), rel=0.05)
    assert fit.valley_ratio() < 0.05
    assert fit.decision_threshold() == pytest.approx(
        _bayes_threshold(-22, 1, 0.3, -9, 2, 0.7), abs=0.2
    )


def test_unimodal_gaussian_has_no_clear_second_mode():
    x = np.random.default_rng(3).normal(-10, 2, 100_000)
    fit = T.fit_gaussian_pair(x)
    assert fit.ashman_d < 2.0 or fit.valley_ratio() > 0.8


def test_posterior_is_monotone_even_with_unequal_spreads():
    fit = T.GaussianPair(mean=(-20.0, -8.0), std=(0.5, 4.0), weight=(0.3, 0.7))
    x = np.linspace(-40, 10, 501)
    p = fit.posterior_low(x)
    assert np.all(np.diff(p) <= 1e-12)
    assert p[0] > 0.99 and p[-1] < 0.01


def test_empty_and_constant_inputs_give_nan_not_errors():
    assert np.isnan(T.otsu_threshold(np.array([np.nan, np.nan])))
    assert np.isnan(T.kittler_illingworth_threshold(np.full(100, 3.0)))
    assert T.fit_gaussian_pair(np.full(100, 3.0)) is None


def test_refit_to_scene_keeps_water_and_adapts_land_and_shares():
    rng = np.random.default_rng(4)
    borrowed = T.GaussianPair(mean=(-21.0, -10.0), std=(1.5, 1.5), weight=(0.3, 0.7))
    scene = np.r_[
        rng.normal(-21.0, 1.5, 1_000), rng.normal(-13.0, 1.5, 49_000)
    ]  # 2% water, darker land
    fit = T.refit_to_scene(borrowed, scene)
    assert fit.mean[0] == -21.0 and fit.std[0] == 1.5
    assert fit.mean[1] == pytest.approx(-13.0, abs=0.2)
    assert fit.weight[0] == pytest.approx(0.02, abs=0.01)
    pred = fit.posterior_low(scene) >= 0.5
    assert pred[1_000:].mean() < 0.01  # the land tail is not cut
    assert pred[:1_000].mean() > 0.9
