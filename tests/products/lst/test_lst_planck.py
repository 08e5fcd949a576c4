"""Band Planck law: round trips, hand-computed values and the micrometre units trap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geoproc.errors import UnknownNameError
from geoproc.products.lst.planck import (
    LANDSAT8_TIRS,
    bt_from_radiance,
    planck_radiance,
    radiance_from_bt,
    thermal_band,
)


@pytest.mark.parametrize("name", ["lwir11", "lwir12"])
def test_bt_radiance_round_trip(name):
    band = LANDSAT8_TIRS[name]
    bt = np.linspace(200.0, 340.0, 141)
    back = bt_from_radiance(radiance_from_bt(bt, band), band)
    np.testing.assert_allclose(back, bt, atol=1e-9)


def test_radiance_matches_hand_computed_k1_k2_law():
    # B10 at 300 K: L = 774.8853 / (exp(1321.0789 / 300) - 1)
    expected = 774.8853 / (math.exp(1321.0789 / 300.0) - 1.0)
    assert radiance_from_bt(300.0, thermal_band("lwir11")) == pytest.approx(expected, rel=1e-12)
    assert 9.0 < expected < 10.0  # W m-2 sr-1 um-1, the familiar magnitude at 300 K
    # and back: BT = K2 / ln(K1 / L + 1)
    assert bt_from_radiance(expected, thermal_band("lwir11")) == pytest.approx(300.0, abs=1e-9)


def test_band_law_agrees_with_monochromatic_planck_in_micrometres():
    """Catches metre/micrometre mix-ups: off by orders of magnitude, not by percent."""
    band = thermal_band("lwir11")
    for t in (250.0, 300.0, 330.0):
        mono = planck_radiance(t, band.center_wavelength_um)
        assert radiance_from_bt(t, band) == pytest.approx(mono, rel=0.05)


def test_non_positive_radiance_gives_nan_not_a_temperature():
    out = bt_from_radiance(np.array([0.0, -1.0, np.nan, 5.0]), thermal_band("lwir11"))
    assert np.isnan(out[:3]).all() and np.isfinite(out[3])


def test_unknown_band_or_sensor_names_what_to_use():
    with pytest.raises(UnknownNameError, match="lwir11"):
        thermal_band("lwir13")
    with pytest.raises(UnknownNameError, match="landsat8"):
        thermal_band("lwir11", constants="modis")
