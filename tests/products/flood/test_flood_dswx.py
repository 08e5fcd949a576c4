"""DSWx-HLS diagnostic tests at their thresholds, the decision table and Fmask masking."""

from __future__ import annotations

import numpy as np
import pytest

from geoproc.products.flood import dswx as D

EPS = 1e-3


def _diag(blue, green, red, nir, swir1, swir2) -> int:
    arr = [np.array([v], dtype=np.float32) for v in (blue, green, red, nir, swir1, swir2)]
    return int(D.diagnostic_tests(*arr)[0])


def _green_for_mndwi(mndwi: float, swir1: float) -> float:
    return swir1 * (1 + mndwi) / (1 - mndwi)


def _red_for_ndvi(ndvi: float, nir: float) -> float:
    return nir * (1 - ndvi) / (1 + ndvi)


@pytest.mark.parametrize("delta, passes", [(+EPS, True), (-EPS, False)])
def test_test1_mndwi_threshold_is_0_0124(delta, passes):
    swir1 = 0.1
    green = _green_for_mndwi(0.0124 + delta, swir1)
    assert bool(_diag(0.05, green, 0.05, 0.3, swir1, 0.2) & 0b1) is passes


@pytest.mark.parametrize("delta, passes", [(+EPS, True), (-EPS, False)])
def test_test2_mbsrv_above_mbsrn(delta, passes):
    # MBSRV = green + red, MBSRN = nir + swir1 = 0.3
    assert bool(_diag(0.05, 0.15 + delta, 0.15, 0.2, 0.1, 0.05) & 0b10) is passes


@pytest.mark.parametrize("delta, passes", [(+EPS, True), (-EPS, False)])
def test_test3_awesh_above_zero(delta, passes):
    green, nir, swir1, swir2 = 0.1, 0.1, 0.05, 0.04
    # AWESH = blue + 2.5 green - 1.5 (nir + swir1) - 0.25 swir2 -> solve blue for AWESH = delta
    blue = delta - 2.5 * green + 1.5 * (nir + swir1) + 0.25 * swir2
    assert bool(_diag(blue, green, 0.05, nir, swir1, swir2) & 0b100) is passes


# PSW-1 base pixel: MNDWI -0.09, swir1 0.06, nir 0.10, NDVI 0.43 -> passes test 4.
_PSW1 = {"blue": 0.05, "green": 0.05, "red": 0.04, "nir": 0.10, "swir1": 0.06, "swir2": 0.03}


@pytest.mark.parametrize(
    "change, passes",
    [
        ({}, True),
        ({"swir1": 0.09 - EPS}, True),
        ({"swir1": 0.09 + EPS}, False),
        ({"nir": 0.15 - EPS}, True),
        ({"nir": 0.15 + EPS}, False),
        ({"red": _red_for_ndvi(0.7 - EPS, 0.10)}, True),
        ({"red": _red_for_ndvi(0.7 + EPS, 0.10)}, False),
        ({"green": _green_for_mndwi(-0.44 + EPS, 0.06)}, True),
        ({"green": _green_for_mndwi(-0.44 - EPS, 0.06)}, False),
    ],
)
def test_test4_partial_surface_water_1(change, passes):
    px = {**_PSW1, **change}
    assert bool(_diag(**px) & 0b1000) is passes


# PSW-2 base pixel: MNDWI -0.14, blue 0.05, swir1 0.2, swir2 0.05, nir 0.2 -> passes test 5.
_PSW2 = {"blue": 0.05, "green": 0.15, "red": 0.04, "nir": 0.20, "swir1": 0.20, "swir2": 0.05}


@pytest.mark.parametrize(
    "change, passes",
    [
        ({}, True),
        ({"blue": 0.10 - EPS}, True),
        ({"blue": 0.10 + EPS}, False),
        ({"swir1": 0.30 - EPS}, True),
        ({"swir1": 0.30 + EPS}, False),
        ({"swir2": 0.10 - EPS}, True),
        ({"swir2": 0.10 + EPS}, False),
        ({"nir": 0.25 - EPS}, True),
        ({"nir": 0.25 + EPS}, False),
        ({"green": _green_for_mndwi(-0.5 + EPS, 0.20)}, True),
        ({"green": _green_for_mndwi(-0.5 - EPS, 0.20)}, False),
    ],
)
def test_test5_partial_surface_water_2(change, passes):
    px = {**_PSW2, **change}
    assert bool(_diag(**px) & 0b10000) is passes


def test_clear_water_passes_all_open_water_tests_and_vegetation_none():
    water = _diag(0.06, 0.07, 0.05, 0.03, 0.015, 0.01)
    forest = _diag(0.03, 0.06, 0.03, 0.35, 0.16, 0.07)
    assert water == 0b11111
    assert forest == 0
    assert D.interpret(np.array([water, forest])).tolist() == [D.HIGH_CONFIDENCE, D.NOT_WATER]


def test_decision_table_hand_entries():
    cases = {
        0b00000: D.NOT_WATER,
        0b00001: D.NOT_WATER,
        0b01000: D.NOT_WATER,
        0b01111: D.HIGH_CONFIDENCE,
        0b11110: D.HIGH_CONFIDENCE,
        0b00111: D.MODERATE_CONFIDENCE,
        0b11001: D.MODERATE_CONFIDENCE,
        0b11000: D.POTENTIAL_WETLAND,
        0b10000: D.LOW_CONFIDENCE,
        0b00011: D.LOW_CONFIDENCE,
    }
    got = D.interpret(np.array(list(cases), dtype=np.uint8))
    assert got.tolist() == list(cases.values())


def test_confidence_follows_number_of_tests_passed():
    codes = np.arange(32, dtype=np.uint8)
    n = np.array([bin(c).count("1") for c in codes])
    cls = D.interpret(codes)
    assert set(cls[n >= 4]) == {D.HIGH_CONFIDENCE}
    assert set(cls[n <= 1]) <= {D.NOT_WATER, D.LOW_CONFIDENCE}
    p = D.water_probability(codes)
    assert (p[n >= 3] > 0.5).sum() == (cls == D.HIGH_CONFIDENCE).sum() + (
        cls == D.MODERATE_CONFIDENCE
    ).sum()
    assert np.all(p[cls == D.HIGH_CONFIDENCE] > p[cls == D.MODERATE_CONFIDENCE].max())
    assert np.all(p[cls == D.NOT_WATER] < 0.5)


def test_fmask_clear_bits_and_fill():
    # bit1 cloud, bit2 adjacent, bit3 shadow, bit4 snow masked; bit5 water and aerosol bits 6-7 kept.
    f = np.array(
        [0, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 0b11000000 | (1 << 5), 255, 1], np.uint8
    )
    assert D.fmask_clear(f).tolist() == [True, False, False, False, False, True, True, False, True]
    nan_f = np.array([np.nan, 2.0, 32.0])
    assert D.fmask_clear(nan_f).tolist() == [True, False, True]


def test_fmask_clear_on_real_hls_layer(realdata):
    rasterio = pytest.importorskip("rasterio")
    path = realdata / "hls-fmask"
    tifs = sorted(path.glob("*L30*Fmask*.tif")) or sorted(path.rglob("*.tif"))
    if not tifs:
        pytest.skip("no Fmask GeoTIFF in hls-fmask")
    with rasterio.open(tifs[0]) as src:
        f = src.read(1)
    clear = D.fmask_clear(f)
    cloudy = (f != 255) & ((f >> 1) & 1 == 1)
    assert cloudy.sum() > 1000 and not clear[cloudy].any()
    assert not clear[f == 255].any()
    # Real water pixels carry aerosol levels in bits 6-7 (values 96, 160, 224): still usable.
    water_with_aerosol = np.isin(f, (96, 160, 224))
    assert water_with_aerosol.sum() > 1000
    assert clear[water_with_aerosol].all()


def test_open_water_call_needs_nir_below_green():
    # 1: clear water (all tests, NIR < green); 2: a vegetated mixed pixel of the LE07 scene
    # (code 0b11001: MNDWI 0.08 and both dark-pixel tests, NDVI 0.36, NIR 0.069 > green 0.039);
    # 3: the same pixel with a NaN band (no evidence, no veto); 4: dry land stays dry.
    bands = {
        "blue": [0.06, 0.025, 0.025, 0.03],
        "green": [0.07, 0.039, np.nan, 0.06],
        "red": [0.05, 0.032, 0.032, 0.03],
        "nir": [0.03, 0.069, 0.069, 0.35],
        "swir1": [0.015, 0.033, 0.033, 0.16],
        "swir2": [0.01, 0.016, 0.016, 0.07],
    }
    arr = {k: np.array(v, np.float32) for k, v in bands.items()}
    d = D.diagnostic_tests(*arr.values())
    assert d[:2].tolist() == [0b11111, 0b11001]
    plain = D.water_probability(d)
    checked = D.water_probability(d, green=arr["green"], nir=arr["nir"])
    assert plain[:2].tolist() == pytest.approx([0.97, 0.80])
    assert checked[:2].tolist() == pytest.approx([0.97, D.CLASS_PROBABILITY[D.POTENTIAL_WETLAND]])
    assert checked[2] == plain[2] and checked[3] == plain[3] < 0.5
    assert D.nir_not_below_green(arr["green"], arr["nir"]).tolist() == [False, True, False, True]
