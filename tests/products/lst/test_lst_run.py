"""The LST product end to end on small synthetic scenes built with the forward RTE."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from geoproc.errors import UsageError
from geoproc.products import lst
from geoproc.products.lst.emissivity import SNOW_ICE, WATER
from geoproc.products.lst.planck import thermal_band
from geoproc.products.lst.rte import forward_rte
from geoproc.products.lst.score import score

B10, B11 = thermal_band("lwir11"), thermal_band("lwir12")
ATMOS = [  # per time: tau, Lu, Ld for lwir11 and lwir12, w
    {"lwir11": (0.88, 0.75, 1.30), "lwir12": (0.80, 1.10, 1.90), "w": 1.2},
    {"lwir11": (0.72, 1.70, 2.80), "lwir12": (0.60, 2.40, 3.70), "w": 2.8},
]


def _qa_method(qa):
    return (np.asarray(qa) >> lst.QA_METHOD_SHIFT) & 3


def _qa_source(qa):
    return (np.asarray(qa) >> lst.QA_ATMOSPHERE_SHIFT) & 3


def _qa_class(qa):
    return ((np.asarray(qa) >> lst.QA_CLASS_SHIFT) & 7) - 1  # back to lst_emissivity codes


def _scene(seed=0, ny=12, nx=10):
    """Random land cover (soil / mixed / vegetation / water / snow) with truth LST and emissivity.

    The truth emissivity follows the sample-archive recipe (fractional cover, cavity term,
    library water/snow values, noise), not our NDVI-THM, so the test measures model error too.
    """
    rng = np.random.default_rng(seed)
    shape = (len(ATMOS), ny, nx)
    kind = rng.integers(0, 5, size=(ny, nx))  # 0 soil, 1 mixed, 2 veg, 3 water, 4 snow
    ndvi = np.choose(kind, [0.1, 0.35, 0.75, -0.2, -0.03]) + rng.normal(0, 0.03, (ny, nx))
    red = np.choose(kind, [0.22, 0.10, 0.04, 0.04, 0.85]) + rng.normal(0, 0.01, (ny, nx))
    nir = red * (1 + ndvi) / (1 - ndvi)
    green = np.choose(kind, [0.15, 0.08, 0.06, 0.07, 0.88])
    swir = np.choose(kind, [0.30, 0.20, 0.15, 0.02, 0.06])
    fvc = np.clip((ndvi - 0.2) / 0.3, 0, 1) ** 2
    eps_truth = 0.988 * fvc + 0.965 * (1 - fvc) + 0.02 * fvc * (1 - fvc)
    eps_truth = np.choose(
        kind, [eps_truth, eps_truth, eps_truth, np.full_like(fvc, 0.991), np.full_like(fvc, 0.99)]
    )
    eps_truth = eps_truth + rng.normal(0, 0.002, (ny, nx))
    eps12 = eps_truth + np.choose(kind, [0.008, 0.004, 0.001, -0.005, -0.005])
    lst_truth = np.where(kind[None] == 4, 268.0, 300.0) + rng.normal(0, 8, shape)
    lst_truth = np.where(kind[None] == 4, np.minimum(lst_truth, 273.0), lst_truth)
    bt11, bt12 = np.empty(shape), np.empty(shape)
    for t, a in enumerate(ATMOS):
        tau, lu, ld = a["lwir11"]
        bt11[t] = forward_rte(
            lst_truth[t], eps_truth, transmittance=tau, upwelling=lu, downwelling=ld, band=B10
        )
        tau, lu, ld = a["lwir12"]
        bt12[t] = forward_rte(
            lst_truth[t], eps12, transmittance=tau, upwelling=lu, downwelling=ld, band=B11
        )
    dims = ("time", "y", "x")
    coords = {
        "time": np.array(["2024-06-01", "2024-06-17"], dtype="datetime64[ns]"),
        "y": np.arange(ny),
        "x": np.arange(nx),
    }

    def stack(a):
        return (dims, np.broadcast_to(a, shape).copy())

    ds = xr.Dataset(
        {
            "lwir11": (dims, np.round(bt11, 2)),  # HLS stores 0.01 K steps
            "lwir12": (dims, np.round(bt12, 2)),
            "red": stack(red),
            "nir08": stack(nir),
            "green": stack(green),
            "swir16": stack(swir),
        },
        coords=coords,
    )
    for band in ("lwir11", "lwir12"):
        for i, key in enumerate(("transmittance", "upwelling", "downwelling")):
            ds[f"atmos_{key}_{band}"] = ("time", [a[band][i] for a in ATMOS])
    ds["atmos_water_vapour"] = ("time", [a["w"] for a in ATMOS])
    return ds, xr.DataArray(lst_truth, dims=dims, coords=coords), kind


def test_known_atmosphere_meets_sample_archive_target():
    ds, truth, _ = _scene()
    out = lst.run(ds)
    s = score(out.lst, truth)
    assert s["n"] == truth.size
    assert s["rmse"] <= 0.5 and abs(s["bias"]) < 0.3
    assert (_qa_method(out.lst_qa) == lst.METHOD_CODES["rte"]).all()
    assert (_qa_source(out.lst_qa) == lst.ATMOSPHERE_SOURCES["dataset"]).all()
    assert out.lst.dtype == np.float32 and out.lst_qa.dtype == np.uint16
    assert out.lst.dims == ("time", "y", "x")
    # smallest on snow/ice (library emissivity, sigma 0.005) plus 10 % of the correction of a
    # one-value-per-date atmosphere: about 0.15 K; never zero
    assert float(out.lst_uncertainty.min()) > 0.1


def test_water_and_snow_get_their_own_emissivity_and_class_bits():
    ds, _, kind = _scene()
    out = lst.run(ds)
    classes = _qa_class(out.lst_qa.isel(time=0))
    assert (classes[kind == 3] == WATER).all() and (classes[kind == 4] == SNOW_ICE).all()
    np.testing.assert_allclose(out.emissivity.isel(time=0).values[kind == 4], 0.990, atol=1e-6)
    np.testing.assert_allclose(out.emissivity.isel(time=0).values[kind == 3], 0.991, atol=1e-6)


def test_masked_input_gives_nan_and_masked_bit():
    ds, _, _ = _scene()
    ds["lwir11"][0, 0, 0] = np.nan
    ds["red"][1, 2, 3] = np.nan
    ds["fmask"] = xr.zeros_like(ds["red"], dtype="uint8")
    ds["fmask"][0, 4, 4] = 1 << 1  # cloud
    ds["fmask"][0, 5, 5] = 1 << 3  # cloud shadow
    ds["fmask"][1, 5, 5] = 255  # fill: no QA there, the bands decide
    out = lst.run(ds)
    for t, y, x in [(0, 0, 0), (1, 2, 3), (0, 4, 4), (0, 5, 5)]:
        assert np.isnan(out.lst[t, y, x]) and np.isnan(out.lst_uncertainty[t, y, x])
        assert np.isnan(out.emissivity[t, y, x])
        assert int(out.lst_qa[t, y, x]) == lst.QA_MASKED
    assert int(np.isnan(out.lst).sum()) == 4
    assert int(((out.lst_qa & lst.QA_MASKED) > 0).sum()) == 4
    assert np.isfinite(out.lst[1, 5, 5])
    # with the cloud bits not masked (fmask_masked=()), the cloud pixel gets a value again
    assert np.isfinite(lst.run(ds, fmask_masked=()).lst[0, 4, 4])


def test_method_falls_back_per_time_when_atmosphere_missing():
    ds, truth, _ = _scene()
    for band in ("lwir11", "lwir12"):
        for key in ("transmittance", "upwelling", "downwelling"):
            ds[f"atmos_{key}_{band}"][1] = np.nan
    out = lst.run(ds)
    assert (_qa_method(out.lst_qa[0]) == lst.METHOD_CODES["rte"]).all()
    assert (_qa_method(out.lst_qa[1]) == lst.METHOD_CODES["split_window"]).all()
    assert (_qa_source(out.lst_qa[1]) == lst.ATMOSPHERE_SOURCES["dataset"]).all()  # w from the cube
    # split-window on a wet day: within its published few-kelvin accuracy, and worse than the RTE
    sw = score(out.lst[1], truth[1])
    assert sw["rmse"] < 3.0
    assert score(out.lst[0], truth[0])["rmse"] < sw["rmse"]
    # without lwir12 and water vapour: single-channel with climatological w, flagged
    out = lst.run(ds.drop_vars(["lwir12", "atmos_water_vapour"]))
    assert (_qa_method(out.lst_qa[1]) == lst.METHOD_CODES["single_channel"]).all()
    assert (_qa_source(out.lst_qa[1]) == lst.ATMOSPHERE_SOURCES["climatology"]).all()
    assert float(out.lst_uncertainty[1].mean()) > 1.5 * float(out.lst_uncertainty[0].mean())


def test_atmosphere_option_overrides_dataset_and_is_flagged(tmp_path):
    ds, truth, _ = _scene()
    tau, lu, ld = ATMOS[1]["lwir11"]
    atm = {"lwir11": {"transmittance": tau, "upwelling_radiance": lu, "downwelling_radiance": ld}}
    path = tmp_path / "atm.json"
    path.write_text(json.dumps({"geoproc:atmosphere": atm}))
    out = lst.run(ds.drop_vars([v for v in ds if v.startswith("atmos_")]), atmosphere=path)
    assert (_qa_source(out.lst_qa) == lst.ATMOSPHERE_SOURCES["option"]).all()
    assert score(out.lst[1], truth[1])["rmse"] <= 0.5  # the right atmosphere for time 1
    assert score(out.lst[0], truth[0])["rmse"] > 1.0  # the wrong one for time 0


def test_single_scene_without_time_and_dask_backed_input_agree():
    ds, _, _ = _scene()
    eager = lst.run(ds)
    one = lst.run(ds.isel(time=0))
    assert one.lst.dims == ("y", "x")
    np.testing.assert_allclose(one.lst.values, eager.lst[0].values, rtol=0, atol=1e-4)
    lazy = lst.run(ds.chunk({"y": 6}))
    assert lazy.lst.chunks is not None
    np.testing.assert_allclose(lazy.lst.values, eager.lst.values, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(lazy.lst_qa.values, eager.lst_qa.values)


def test_cf_attributes_and_provenance():
    ds, _, _ = _scene()
    out = lst.run(ds, method="auto")
    assert out.lst.attrs["units"] == "K" and out.lst.attrs["standard_name"] == "surface_temperature"
    assert "method_rte" in out.lst_qa.attrs["flag_meanings"]
    assert len(out.lst_qa.attrs["flag_masks"]) == len(out.lst_qa.attrs["flag_meanings"].split())
    assert out.attrs["product"] == "lst" and json.loads(out.attrs["parameters"])["method"] == "auto"


def test_qa_decodes_with_cf_flag_masks_and_values():
    ds, _, kind = _scene()
    ds["lwir11"][0, 0, 0] = np.nan
    out = lst.run(ds)
    attrs = out.lst_qa.attrs
    flags = list(
        zip(attrs["flag_masks"], attrs["flag_values"], attrs["flag_meanings"].split(), strict=True)
    )

    def decode(value):
        return [name for mask, flag, name in flags if (int(value) & int(mask)) == int(flag)]

    assert decode(out.lst_qa[0, 0, 0]) == ["masked"]
    y, x = np.argwhere(kind == 4)[0]
    assert decode(out.lst_qa[1, y, x]) == [
        "method_rte",
        "atmosphere_dataset",
        "emissivity_snow_ice",
    ]


@pytest.mark.parametrize(
    ("change", "options", "message"),
    [
        (lambda d: d.assign(lwir11=d.lwir11 - 273.15), {}, "add 273.15"),
        (lambda d: d.drop_vars("lwir11"), {}, "lwir11"),
        (lambda d: d.drop_vars(["red", "nir08"]), {}, "add 'red' and 'nir08'"),
        (lambda d: d, {"method": "magic"}, "rte, split_window"),
        (lambda d: d.drop_vars("lwir12"), {"method": "split_window"}, "add lwir12"),
        (
            lambda d: d.drop_vars([v for v in d if v.startswith("atmos_")]),
            {"method": "rte"},
            "atmosphere=",
        ),
        (lambda d: d, {"atmosphere": {"lwir11": {"transmittance": 0.9}}}, "needs all of"),
        (
            lambda d: d,
            {
                "atmosphere": {
                    "lwir11": {
                        "transmittance": 1.5,
                        "upwelling_radiance": 1,
                        "downwelling_radiance": 1,
                    }
                }
            },
            "transmittance_lwir11 must lie",
        ),
        (lambda d: d, {"atmosphere": {"lwir13": {}}}, "Unknown atmosphere keys"),
        (lambda d: d, {"atmosphere": "/nonexistent/atm.json"}, "does not exist"),
        (lambda d: d, {"emissivity": 9800}, "apply the scale factor"),
        (lambda d: d, {"ndvi_soil": 0.5, "ndvi_vegetation": 0.2}, "ndvi_soil < ndvi_vegetation"),
    ],
)
def test_bad_input_raises_usage_error_naming_the_fix(change, options, message):
    ds, _, _ = _scene()
    with pytest.raises(UsageError, match=message):
        lst.run(change(ds), **options)


def test_provided_emissivity_replaces_ndvi_thm():
    ds, _, _ = _scene()
    out = lst.run(ds, emissivity=0.97)
    assert np.allclose(out.emissivity, 0.97)
    assert (_qa_class(out.lst_qa) == 5).all()
    # emissivity lower than NDVI-THM over vegetation -> warmer LST there
    ref = lst.run(ds)
    assert float((out.lst - ref.lst).where(ref.emissivity > 0.98).min()) > 0.2
