"""Unit checks of the sample generator's physics and geometry (no archive needed)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from geoproc.dev.sample.clouds import _fmask_misses
from geoproc.dev.sample.flood import river_stage_m
from geoproc.dev.sample.noise import rng_for, smooth_field
from geoproc.dev.sample.region import build_region, mgrs_square
from geoproc.dev.sample.sun import solar_position
from geoproc.dev.sample.thermal import (
    at_sensor_radiance,
    brightness_temperature,
    invert_lst,
    planck_radiance,
    scene_atmosphere,
)


def test_mgrs_squares_of_known_cities():
    assert mgrs_square(32, 691_000, 5_335_000, 48.14) == "32UPU"  # Munich
    assert mgrs_square(33, 601_000, 5_340_000, 48.21) == "33UXP"  # Vienna


def test_small_region_granules_lie_on_the_30m_lattice_and_straddle_two_zones():
    region = build_region("small")
    assert {g.epsg for g in region.granules} == {32632, 32633}
    for g in region.granules:
        a, b, c, d, e, f = g.transform
        assert (a, b, d, e) == (30.0, 0.0, 0.0, -30.0)
        assert c % 30 == 0 and f % 30 == 0
    assert len({g.name for g in region.granules}) == len(region.granules)


def test_planck_and_brightness_temperature_are_inverse_and_match_landsat_constants():
    t = np.array([250.0, 273.15, 300.0, 330.0])
    for band in ("lwir11", "lwir12"):
        np.testing.assert_allclose(
            brightness_temperature(planck_radiance(t, band), band), t, atol=1e-9
        )
    # a 300 K blackbody gives ~9.60 W m-2 sr-1 um-1 in TIRS B10 and ~8.94 in B11
    assert float(planck_radiance(300.0, "lwir11")) == pytest.approx(9.60, abs=0.01)
    assert float(planck_radiance(300.0, "lwir12")) == pytest.approx(8.94, abs=0.01)


def test_rte_inversion_recovers_lst_exactly():
    atm = scene_atmosphere(200, 293.0, rng_for(0, 1))
    props = atm.as_properties()
    lst = np.linspace(270, 320, 11)
    eps = np.linspace(0.95, 0.99, 11)
    for band in ("lwir11", "lwir12"):
        bt = brightness_temperature(at_sensor_radiance(lst, eps, atm, band), band)
        hot = lst > 300
        assert np.all(bt[hot] < lst[hot]) and np.all(bt[~hot] != lst[~hot])
        np.testing.assert_allclose(invert_lst(bt, eps, props, band), lst, atol=1e-4)


def test_sun_is_high_at_summer_noon_and_low_in_winter_morning():
    zen, az = solar_position(dt.datetime(2024, 6, 21, 11, 12, tzinfo=dt.UTC), 12.0, 47.5)
    assert zen == pytest.approx(47.5 - 23.44, abs=0.5) and az == pytest.approx(180, abs=3)
    zen, az = solar_position(dt.datetime(2024, 1, 3, 9, 42, tzinfo=dt.UTC), 12.0, 47.5)
    assert 70 < zen < 76 and 145 < az < 165


def test_flood_stage_only_in_the_event():
    assert river_stage_m(dt.date(2024, 4, 30)) == 0
    assert river_stage_m(dt.date(2024, 5, 24)) == pytest.approx(3.0)
    assert 0 < river_stage_m(dt.date(2024, 6, 4)) < 1.2
    assert river_stage_m(dt.date(2024, 6, 10)) == 0


def test_smooth_field_is_unit_variance_and_coarse_evaluation_matches():
    y, x = np.mgrid[0:200, 0:200] * 0.03
    full = smooth_field(x, y, rng_for(3, 4), wavelength_km=(0.4, 6.0), waves=40)
    coarse = smooth_field(x, y, rng_for(3, 4), wavelength_km=(0.4, 6.0), waves=40, step=4)
    assert np.max(np.abs(full - coarse)) < 0.1
    big = smooth_field(
        *np.meshgrid(np.linspace(0, 200, 400), np.linspace(0, 200, 400)),
        rng_for(1, 2),
        wavelength_km=(0.4, 6.0),
    )
    assert 0.8 < big.std() < 1.2 and abs(big.mean()) < 0.1


def test_fmask_misses_hit_the_requested_rate():
    y, x = np.mgrid[0:300, 0:300] * 0.03
    n = smooth_field(x, y, rng_for(5, 6), wavelength_km=(0.4, 6.0), waves=40)
    alpha = np.clip((n - 0.3) / 0.6, 0, 1) ** 0.8
    alpha[alpha < 0.02] = 0
    missed = _fmask_misses(alpha, 0.03, rng_for(0, 0))
    rate = missed.sum() / (alpha > 0).sum()
    assert 0.02 < rate < 0.045
    assert np.all(alpha[missed] > 0)  # only real cloud can be missed
    assert np.median(alpha[missed]) < np.median(alpha[alpha > 0])  # and mostly thin cloud


@pytest.mark.parametrize("size", ["small", "medium"])
def test_granules_cover_every_processing_tile_with_overlap(size):
    from shapely.geometry import box

    region = build_region(size)
    tile_m = region.config.tile_size_px * 30.0
    for zone in region.zones:
        granules = [box(*g.bounds) for g in zone.granules]
        assert len(granules) >= 2 and granules[0].intersection(granules[1]).area > 0
        union = granules[0].union(granules[1])
        for g in granules[2:]:
            union = union.union(g)
        for i, j in region.tiles[zone.zone]:
            assert union.contains(box(i * tile_m, j * tile_m, (i + 1) * tile_m, (j + 1) * tile_m))
