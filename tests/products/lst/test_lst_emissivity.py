"""NDVI-THM emissivity: hand-computed branches, continuity at the breakpoints, water and snow."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from geoproc.products.lst import emissivity as emis


def _da(values):
    return xr.DataArray(np.asarray(values, dtype="float64"), dims="x")


def test_branches_match_hand_computed_values():
    red = _da([0.20, 0.10, 0.05])
    ndvi = _da([0.10, 0.35, 0.80])
    eps, cls = emis.ndvi_thm_emissivity(ndvi, red, band="lwir11")
    soil = 0.973 - 0.047 * 0.20
    assert float(eps[0]) == pytest.approx(soil, abs=1e-12)  # 0.9636
    # mixed: Pv = ((0.35-0.2)/0.3)^2 = 0.25; eps_s(red=0.1) = 0.9683
    pv, es, ev = 0.25, 0.973 - 0.047 * 0.10, 0.987
    cavity = 4 * 0.005 * pv * (1 - pv)  # 0.00375
    assert float(eps[1]) == pytest.approx(ev * pv + es * (1 - pv) + cavity, abs=1e-12)
    assert float(eps[2]) == pytest.approx(0.987, abs=1e-12)
    assert cls.values.tolist() == [emis.SOIL, emis.MIXED, emis.VEGETATION]


@pytest.mark.parametrize("band", ["lwir11", "lwir12"])
@pytest.mark.parametrize("breakpoint", [0.2, 0.5])
def test_continuous_at_breakpoints(band, breakpoint):
    h = 1e-9
    red = _da([0.08, 0.08])
    eps, _ = emis.ndvi_thm_emissivity(_da([breakpoint - h, breakpoint + h]), red, band=band)
    assert abs(float(eps[1] - eps[0])) < 1e-6


def test_cavity_term_raises_mixed_pixels_above_linear_mix():
    red = _da([0.08])
    eps, _ = emis.ndvi_thm_emissivity(_da([0.35]), red)
    es, ev, pv = 0.973 - 0.047 * 0.08, 0.987, 0.25
    assert float(eps[0]) == pytest.approx(ev * pv + es * (1 - pv) + 0.00375, abs=1e-12)


def test_water_and_snow_from_fmask_bits_override_ndvi():
    # all pixels look like bright bare soil by NDVI; Fmask says water, snow, nothing, fill
    red, nir = _da([0.5, 0.5, 0.5, 0.5]), _da([0.55, 0.55, 0.55, 0.55])
    fmask = _da([1 << 5, 1 << 4, 0, 255])
    cls = emis.surface_classes(red=red, nir08=nir, fmask=fmask)
    assert cls.values.tolist() == [emis.WATER, emis.SNOW_ICE, emis.SOIL, emis.SOIL]
    eps, sigma = emis.emissivity_for_classes(cls, red, nir, band="lwir11")
    assert eps.values[:2].tolist() == [0.991, 0.990]
    assert float(eps[2]) == pytest.approx(0.973 - 0.047 * 0.5)
    # per-class sigmas calibrated on real C2 L2 scenes (NDVI-THM vs USGS ST_EMIS)
    assert sigma.values.tolist() == [0.010, 0.005, 0.012, 0.012]
    eps12, _ = emis.emissivity_for_classes(cls, red, nir, band="lwir12")
    assert eps12.values[:2].tolist() == [0.986, 0.985]


def test_snow_and_water_from_ndsi_ndwi_without_fmask():
    # ice: green 0.85, swir16 0.05, nir 0.75; lake: green 0.08, nir 0.03, swir16 0.01;
    # soil: green 0.12, red 0.15, nir 0.20 (NDVI 0.14), swir16 0.30
    green, red = _da([0.85, 0.08, 0.12]), _da([0.84, 0.06, 0.15])
    nir, swir = _da([0.75, 0.03, 0.20]), _da([0.05, 0.01, 0.30])
    cls = emis.surface_classes(red=red, nir08=nir, green=green, swir16=swir)
    assert cls.values.tolist() == [emis.SNOW_ICE, emis.WATER, emis.SOIL]


def test_masked_reflectance_gives_nan_class_and_emissivity():
    red, nir = _da([np.nan, 0.1]), _da([0.3, np.nan])
    cls = emis.surface_classes(red=red, nir08=nir, fmask=_da([1 << 5, 1 << 5]))
    eps, sigma = emis.emissivity_for_classes(cls, red, nir, band="lwir11")
    assert np.isnan(cls).all() and np.isnan(eps).all() and np.isnan(sigma).all()
