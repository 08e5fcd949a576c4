"""The uncertainty budget's terms: sensor noise, water vapour from the scene, sensor SC sets."""

from __future__ import annotations

import numpy as np
import pytest

from geoproc.errors import UsageError
from geoproc.products import lst
from geoproc.products.lst import single_channel as sc
from geoproc.products.lst.landsat_c2 import load_landsat_c2_l2
from geoproc.products.lst.planck import thermal_band
from geoproc.products.lst.uncertainty import quadrature, sensor_noise_sigma

GREENLAND = "landsat-c2l2-greenland"
L5 = "LT05_L2SP_090084_19980308_20200909_02_T1"


def test_sensor_noise_is_nedt_through_tau_and_emissivity():
    assert sensor_noise_sigma(10.904, 1.0) == pytest.approx(0.05)
    assert sensor_noise_sigma(11.27, 0.98, 0.8) == pytest.approx(0.22 / (0.8 * 0.98))
    assert sensor_noise_sigma(11.45, 1.0) == pytest.approx(0.20)
    assert quadrature(3.0, 4.0) == pytest.approx(5.0)


def test_water_vapour_from_scene_temperature_follows_reitan():
    w, w_sigma = sc.climatological_water_vapour(273.15 + 30.0, 10.0)
    assert w == pytest.approx(np.exp(0.1102 + 0.0614 * 20.0))
    assert w_sigma == pytest.approx(w * 0.0614 * 8.0)
    cold, _ = sc.climatological_water_vapour(265.0)  # an ice sheet: a dry column
    warm, _ = sc.climatological_water_vapour(315.0)  # a hot humid surface
    assert cold < 0.3 < 2.0 < warm


def test_each_sensor_gets_its_own_single_channel_coefficients():
    tm = thermal_band("lwir11", constants="landsat5")
    etm = thermal_band("lwir11", constants="landsat7")
    tirs = thermal_band("lwir11", constants="landsat8")
    assert sc.sc_coefficients(tm) == (sc.SC_TM_PSI, 1256.0)
    assert sc.sc_coefficients(etm) == (sc.SC_ETM_PSI, 1277.0)
    assert sc.sc_coefficients(tirs) == (sc.SC_B10_PSI, 1324.0)
    # hand-computed ETM+ value (Jimenez-Munoz et al. 2009) at w = 1.5, BT 290 K, eps 0.98
    w, bt, eps = 1.5, 290.0, 0.98
    psi = [a * w * w + b * w + c for a, b, c in sc.SC_ETM_PSI]
    radiance = etm.k1 / np.expm1(etm.k2 / bt)
    expected = bt**2 / (1277.0 * radiance) * ((psi[0] * radiance + psi[1]) / eps + psi[2])
    expected += bt - bt**2 / 1277.0
    assert sc.single_channel_lst(bt, eps, w, band=etm) == pytest.approx(expected, abs=1e-9)
    assert sc.sc_transmittance(0.0, band=etm) == pytest.approx(1 / 1.02717)


def test_water_vapour_error_is_propagated_at_sigma_points():
    """ETM+ LST is flat in w near 2 g cm-2: a derivative says ~0, the sigma points do not."""
    etm = thermal_band("lwir11", constants="landsat7")
    args = (290.0, 0.98, 0.0, 2.0, 1.5)
    got = sc.single_channel_uncertainty(*args, band=etm)
    f = [sc.single_channel_lst(290.0, 0.98, w, band=etm) for w in (0.5, 2.0, 3.5)]
    w_term = np.sqrt(((f[0] - f[1]) ** 2 + (f[2] - f[1]) ** 2) / 2)
    assert w_term > 0.3
    assert got == pytest.approx(np.sqrt(1.0 + w_term**2))


def test_no_atmosphere_on_an_ice_sheet_is_within_half_a_kelvin(realdata):
    """The fixed 2 g cm-2 climatology put this dry Greenland scene 6.7 K too cold."""
    ds = load_landsat_c2_l2(realdata / GREENLAND, atmosphere="none")
    out = lst.run(ds)
    clear = ds.qa_clear.values & np.isfinite(out.lst.values) & np.isfinite(ds.st_lst.values)
    err = (out.lst.values - ds.st_lst.values)[clear]
    assert clear.sum() > 40000
    assert np.sqrt(np.mean(err**2)) < 0.5
    source = (out.lst_qa.values[clear] >> lst.QA_ATMOSPHERE_SHIFT) & 3
    assert (source == lst.ATMOSPHERE_SOURCES["climatology"]).all()


def test_emissivity_class_sigma_option_sets_the_stated_sigma(realdata):
    ds = load_landsat_c2_l2(realdata / "landsat-c2l2-australia" / L5, atmosphere="scene_mean")
    base = lst.run(ds)
    wide = lst.run(ds, params=lst.LSTParams(emissivity_class_sigma=(("mixed", 0.03),)))
    mixed = ((base.lst_qa.values >> lst.QA_CLASS_SHIFT) & 7) == 2
    veg = ((base.lst_qa.values >> lst.QA_CLASS_SHIFT) & 7) == 3
    assert mixed.sum() > 100 and veg.sum() > 100
    assert (wide.lst_uncertainty.values[mixed] > base.lst_uncertainty.values[mixed] + 0.5).all()
    np.testing.assert_array_equal(
        wide.lst_uncertainty.values[veg], base.lst_uncertainty.values[veg]
    )
    np.testing.assert_array_equal(wide.lst.values, base.lst.values)
    assert wide.attrs  # parameters recorded
    with pytest.raises(UsageError, match="emissivity_class_sigma"):
        lst.LSTParams(emissivity_class_sigma=(("forest", 0.01),))
    with pytest.raises(UsageError, match="dewpoint_depression_k"):
        lst.LSTParams(dewpoint_depression_k=100.0)
