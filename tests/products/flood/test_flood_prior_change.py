"""History prior, change against the reference backscatter, and double bounce: hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from geoproc.products.flood import change as C
from geoproc.products.flood import double_bounce as B
from geoproc.products.flood import prior as P
from geoproc.products.thresholds import GaussianPair

nan = np.nan


def test_occurrence_prior_is_laplace_rule_capped_and_needs_observations():
    # pixels over 20 looks: water 20/20, 0/20, 4/20 (a flood), 1 valid look only
    per_pixel = np.array([[1] * 20, [0] * 20, [1] * 4 + [0] * 16, [nan] * 19 + [1]], np.float32)
    stack = per_pixel.T[:, None, :]
    prior = P.occurrence_prior(stack, min_observations=2)[0]
    assert prior[0] == pytest.approx(P.MAX_PRIOR)  # (20 + 1) / 22 = 0.955, capped
    assert prior[1] == pytest.approx(1 / 22)
    assert prior[2] == pytest.approx(5 / 22)
    assert np.isnan(prior[3])
    assert P.occurrence_prior(stack, max_prior=1.0)[0][0] == pytest.approx(21 / 22)
    assert P.occurrence_prior(stack[:2], min_observations=2)[0][1] == pytest.approx(1 / 4)


def test_posterior_with_prior_hand_computed():
    fit = GaussianPair(mean=(-22.0, -10.0), std=(2.0, 2.0), weight=(0.05, 0.95))
    # at the midpoint both (equal-spread) densities are equal, so the posterior is the prior
    mid = np.array([-16.0, -16.0, -16.0, nan])
    prior = np.array([0.9, 0.01, nan, 0.9])
    post = P.posterior_with_prior(mid, fit, prior)
    assert post[0] == pytest.approx(0.9, abs=1e-6)
    # a prior below the scene share never lowers it; NaN prior = scene share
    assert post[1] == pytest.approx(0.05, abs=1e-6)
    assert post[2] == pytest.approx(0.05, abs=1e-6)
    assert np.isnan(post[3])
    # one std from the water mean: likelihood ratio exp(-0.5) / exp(-0.5 * 25) = e^12
    x = np.array([-20.0])
    lr = np.exp(12.0)
    expect = 0.05 * lr / (0.05 * lr + 0.95)
    assert P.posterior_with_prior(x, fit, None)[0] == pytest.approx(expect, rel=1e-5)
    assert P.posterior_with_prior(x, fit, None)[0] == pytest.approx(
        float(fit.posterior_low(x)[0]), rel=1e-5
    )
    # darker than the water mean is never less likely water
    assert P.posterior_with_prior(np.array([-40.0]), fit, None)[0] >= expect


def test_reference_backscatter_is_the_temporal_median_with_enough_dates():
    stack = np.array([[-10.0, -20.0], [-12.0, nan], [-11.0, nan], [-30.0, nan], [-9.0, nan]])
    ref = C.reference_backscatter(stack[:, None, :], min_dates=4)[0]
    assert ref[0] == pytest.approx(
        -11.0
    )  # median of -10, -12, -11, -30, -9: the flood at -30 does not move it
    assert np.isnan(ref[1])


def test_unchanged_dark_needs_a_land_reference_and_a_small_drop():
    water = np.array([True, True, True, False, True])
    db = np.array([-19.0, -19.0, -19.0, -19.0, nan])
    ref = np.array([-17.0, -12.0, -21.0, -17.0, -17.0])
    hits = C.unchanged_dark(water, db, ref, water_max_db=-18.0, min_drop_db=3.0, window=1)
    # 0: dropped 2 dB over land -> unchanged; 1: dropped 7 dB -> real change;
    # 2: reference is water itself; 3: not water; 4: no data
    assert hits.tolist() == [True, False, False, False, False]
    # the change is averaged over the window: a 3 dB drop beside two 1 dB drops is 5/3 dB
    row = C.unchanged_dark(
        np.ones((1, 3), bool),
        np.array([[-16.0, -18.0, -16.0]]),
        np.full((1, 3), -15.0),
        window=3,
    )
    assert row.tolist() == [[True, True, True]]
    assert C.local_mean(np.array([[-1.0, -3.0, -1.0]]), 3)[0, 1] == pytest.approx(-5 / 3)


def test_mean_increase_averages_gated_pixels_only():
    db = np.array([[0.0, 3.0, 6.0], [0.0, 3.0, 6.0], [0.0, 3.0, 6.0]])
    ref = np.zeros((3, 3))
    gate = np.array([[False, True, True]] * 3)
    rise = B.mean_increase(db, ref, gate, window=3)
    assert np.isnan(rise[:, 0]).all()
    # centre: gated neighbours are the 3s and 6s of columns 1-2 -> 4.5
    assert rise[1, 1] == pytest.approx(4.5)
    # corner (0, 2): gated neighbours (0,1),(0,2),(1,1),(1,2) -> (3 + 6 + 3 + 6) / 4
    assert rise[0, 2] == pytest.approx(4.5)
    assert B.mean_increase(db, ref, gate, window=1)[1, 2] == pytest.approx(6.0)


def test_connected_to_seeds_keeps_only_regions_with_enough_seeds():
    cand = np.zeros((6, 8), bool)
    seeds = np.zeros((6, 8), bool)
    cand[0:2, 0:2] = True  # touches 3 seeds diagonally / side by side
    seeds[2, 2] = seeds[2, 1] = seeds[3, 1] = True
    cand[4:6, 6:8] = True  # touches one seed
    seeds[3, 5] = True
    out = B.connected_to_seeds(cand, seeds, min_seed_pixels=2)
    assert out[0:2, 0:2].all()
    assert not out[4:6, 6:8].any()
    assert not out[seeds].any()  # seeds themselves are not returned
    assert B.connected_to_seeds(cand, seeds, min_seed_pixels=1)[4:6, 6:8].all()


def _bounce_scene(rise_db: float, *, flood: bool, forest_ref_db: float = -8.0):
    ref = np.full((40, 40), -12.0)
    ref[:, 20:] = forest_ref_db  # forest / town on the right half
    db = ref.copy()
    if flood:
        db[:, 10:20] = -21.0  # open flood on the meadow next to the forest
    db[:, 20:30] += rise_db  # the forest edge brightens
    return db, ref


def test_flooded_bright_scatterers_need_rise_brightness_and_connection():
    opts = B.DoubleBounceOptions()
    db, ref = _bounce_scene(3.0, flood=True)
    hits = B.flooded_bright_scatterers(db, ref, db < -18.0, options=opts)
    assert hits[:, 21:29].all()  # the risen, connected forest
    assert not hits[:, 31:].any()  # forest that did not rise
    assert not hits[:, :20].any()  # the open water itself is not double bounce
    # the same rise with no open flood water on the date: a seasonal change, not a flood
    db, ref = _bounce_scene(3.0, flood=False)
    assert not B.flooded_bright_scatterers(db, ref, db < -18.0, options=opts).any()
    # a rise too small
    db, ref = _bounce_scene(1.0, flood=True)
    assert not B.flooded_bright_scatterers(db, ref, db < -18.0, options=opts).any()
    # a dim (meadow-like) reference cannot show double bounce
    db, ref = _bounce_scene(3.0, flood=True, forest_ref_db=-13.0)
    assert not B.flooded_bright_scatterers(db, ref, db < -18.0, options=opts).any()
