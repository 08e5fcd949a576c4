"""The default method: temporal statistics and calibrated rules, on any band subset and sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geoproc.errors import UsageError
from geoproc.products import canopy
from geoproc.products.canopy.metric_rules import MetricThresholds, classify_metrics
from geoproc.products.canopy.metrics import temporal_metrics
from tests.helpers.canopy_series import class_grid, synthetic_dataset, truth_of

KINDS = ["broadleaf", "conifer", "evergreen_broadleaf", "grass", "crop"]
SEASONAL_MEDIANS = pd.DatetimeIndex(["2024-01-15", "2024-04-15", "2024-07-15", "2024-10-15"])


def test_percentiles_match_numpy_and_ignore_masked_dates():
    rng = np.random.default_rng(0)
    ndvi = rng.uniform(0.1, 0.9, size=(30, 5)).astype("float32")
    ndvi[rng.random(ndvi.shape) < 0.3] = np.nan
    times = pd.date_range("2024-01-01", periods=30, freq="12D").values
    m = temporal_metrics({"ndvi": ndvi}, times)
    for q in (10, 50, 90):
        np.testing.assert_allclose(m[f"ndvi_p{q}"], np.nanpercentile(ndvi, q, axis=0), rtol=1e-5)
    assert m["clear_count"].tolist() == np.isfinite(ndvi).sum(axis=0).tolist()


def test_seasons_are_aligned_by_hemisphere():
    times = SEASONAL_MEDIANS.values
    ndvi = np.array([[0.4], [0.6], [0.9], [0.7]], dtype="float32")  # Jan, Apr, Jul, Oct
    north = temporal_metrics({"ndvi": ndvi}, times, shift_days=0)
    south = temporal_metrics({"ndvi": ndvi}, times, shift_days=182)
    assert north["ndvi_jja"][0] == pytest.approx(0.9) and north["ndvi_djf"][0] == pytest.approx(0.4)
    assert south["ndvi_jja"][0] == pytest.approx(0.4) and south["ndvi_djf"][0] == pytest.approx(0.9)
    # leaf-off is the lower of the aligned winter and spring medians
    assert north["ndvi_leaf_off"][0] == pytest.approx(0.4)
    assert north["leaf_off_contrast"][0] == pytest.approx(0.5)


def test_snow_on_an_evergreen_canopy_is_not_read_as_leaf_off():
    times = SEASONAL_MEDIANS.values
    conifer = [0.022, 0.035, 0.022, 0.21, 0.10, 0.045]
    snow = [0.80, 0.78, 0.75, 0.70, 0.08, 0.05]
    names = ("blue", "green", "red", "nir08", "swir16", "swir22")
    rows = np.array([snow, conifer, conifer, conifer], dtype="float32")
    result = classify_metrics({n: rows[:, i, None] for i, n in enumerate(names)}, times)
    assert result.clear_count.tolist() == [3]
    assert np.argmax(result.probabilities[:, 0]) == 2


@pytest.mark.parametrize("south", [False, True], ids=["north", "south"])
def test_default_method_classifies_every_kind_in_both_hemispheres(south):
    classes = class_grid(KINDS, repeat=3)
    out = canopy.run(synthetic_dataset(classes, south=south, seed=2))
    assert out.attrs["parameters"].startswith('{"all_probabilities": false, "hemisphere": null')
    np.testing.assert_array_equal(out["canopy_class"].values[0], truth_of(classes))
    cover = out["canopy_cover"].values[0]
    assert cover[truth_of(classes) == 0].max() == 0 and cover[truth_of(classes) > 0].min() >= 40


@pytest.mark.parametrize(
    "bands",
    [
        ("red", "nir08", "swir16", "swir22"),
        ("blue", "green", "red", "nir08"),
        ("red", "nir08", "swir16"),
    ],
)
def test_a_band_subset_and_four_seasonal_medians_still_find_the_trees(bands):
    classes = class_grid(["broadleaf", "conifer", "grass"], repeat=2)
    ds = synthetic_dataset(classes, times=SEASONAL_MEDIANS, cloud_fraction=0.0, seed=3)
    out = canopy.run(ds[list(bands)]).isel(year=0)
    cls = out["canopy_class"].values
    truth = truth_of(classes)
    assert (cls[truth == 2] == 2).all() and (cls[truth == 1] == 1).all()
    if "swir16" in bands:  # without SWIR an evergreen-green grassland cannot be told apart
        assert (cls[truth == 0] == 0).all()
    assert out.attrs["input_bands"] == " ".join(b for b in canopy.INPUT_BANDS if b in bands)


def test_broad_nir_is_used_when_nir08_is_absent():
    classes = class_grid(["broadleaf", "conifer"], repeat=2)
    ds = synthetic_dataset(classes, seed=4).rename({"nir08": "nir"})
    out = canopy.run(ds)
    np.testing.assert_array_equal(out["canopy_class"].values[0], truth_of(classes))


def test_ndvi_alone_uses_the_calibrated_p10_threshold():
    ds = synthetic_dataset(class_grid(["conifer"], repeat=2), seed=5)
    ndvi = ((ds["nir08"] - ds["red"]) / (ds["nir08"] + ds["red"])).to_dataset(name="ndvi")
    # right column: a field with bare soil for a third of the year (NDVI 0.12)
    bare = ndvi["time"].dt.month.isin([11, 12, 1, 2])
    ndvi["ndvi"][:, :, 1] = ndvi["ndvi"][:, :, 1].where(~bare, 0.12)
    out = canopy.run(ndvi)
    assert out["canopy_class"].values[0][:, 0].tolist() == [2, 2]  # evergreen: conifer
    assert out["canopy_class"].values[0][:, 1].tolist() == [0, 0]
    assert out.attrs["input_bands"] == "ndvi"


def test_input_without_red_and_nir_or_ndvi_is_a_usage_error_naming_them():
    ds = synthetic_dataset(class_grid(["grass"], repeat=1))[["blue", "green"]]
    with pytest.raises(UsageError, match="`red` and `nir08`"):
        canopy.run(ds)
    with pytest.raises(UsageError, match="method='metrics'"):
        canopy.run(ds, method="rules")


def test_thresholds_are_a_frozen_record():
    with pytest.raises(AttributeError):
        MetricThresholds().evergreen_p10_ndvi = 0.5  # type: ignore[misc]


def test_shipped_rules_card_states_the_thresholds_in_use_and_the_training_data():
    import dataclasses
    import json

    from geoproc.products.canopy.metric_rules import CARD_PATH

    card = json.loads(CARD_PATH.read_text())
    props = card["properties"]
    assert props["mlm:hyperparameters"] == dataclasses.asdict(MetricThresholds())
    assert "Slovenia" in props["geoproc:training"]["ndvi_only_p10"]
    assert "Victoria" in props["geoproc:training"]["other thresholds"]
    assert (CARD_PATH.parent / card["assets"]["model"]["href"]).resolve().is_file()


def test_rules_card_validates_against_stac_and_mlm_schemas_offline():
    import json

    from geoproc.products.canopy.metric_rules import CARD_PATH
    from geoproc.stac_schemas import validate_stac

    used = validate_stac(json.loads(CARD_PATH.read_text()))  # packaged schemas, no network
    assert any("mlm/v1.5.2" in url for url in used)


def test_without_crs_the_default_method_still_finds_trees_and_says_seasons_are_unknown():
    classes = class_grid(KINDS, repeat=2)
    ds = synthetic_dataset(classes, south=True, seed=7).drop_vars("spatial_ref")
    out = canopy.run(ds)
    assert out.attrs["season_alignment"].startswith("none")
    cls, truth = out["canopy_class"].values[0], truth_of(classes)
    np.testing.assert_array_equal(cls > 0, truth > 0)
    assert (cls[truth == 2] == 2).all()
    # latitude coordinates are enough to align the seasons
    with_lat = ds.assign_coords(latitude=(("y", "x"), np.full(cls.shape, -37.0)))
    assert canopy.run(with_lat).attrs["season_alignment"].startswith("hemisphere-aligned")


def test_reflectance_given_as_integers_times_10000_is_scaled():
    classes = class_grid(KINDS, repeat=2)
    ds = synthetic_dataset(classes, seed=8)
    as_dn = (ds * 10000).round()
    a, b = canopy.run(ds), canopy.run(as_dn)
    np.testing.assert_array_equal(a["canopy_class"].values, b["canopy_class"].values)
    assert b.attrs["input_scaled_by_1e-4"] == "blue green red nir08 swir16 swir22"
    assert "input_scaled_by_1e-4" not in a.attrs


def test_seasonal_medians_across_new_year_make_one_layer():
    times = pd.DatetimeIndex(["2020-12-15", "2021-03-15", "2021-06-15", "2021-09-15"])
    classes = class_grid(["broadleaf", "conifer", "grass"], repeat=2)
    ds = synthetic_dataset(classes, times=times, cloud_fraction=0.0, seed=9)
    out = canopy.run(ds)
    assert out["year"].values.tolist() == [2021]
    assert (out["canopy_clear_count"].values == 4).all()
    assert (out["canopy_months_observed"].values == 4).all()
    assert (out["canopy_seasons_covered"].values == 4).all()
    np.testing.assert_array_equal(out["canopy_class"].values[0], truth_of(classes))


def test_dask_input_stays_lazy_and_gives_the_eager_result():
    ds = synthetic_dataset(class_grid(KINDS, repeat=2), south=True, seed=10)
    eager = canopy.run(ds)
    lazy = canopy.run(ds.chunk({"time": 20, "y": 1, "x": 5}))
    assert lazy["canopy_class"].chunks is not None
    for name in eager.data_vars:
        np.testing.assert_array_equal(lazy[name].values, eager[name].values, err_msg=name)


def test_a_dense_crop_with_a_green_winter_is_not_a_deciduous_forest():
    from geoproc.products.canopy.metric_rules import tree_probability

    def stats(p10, p50, on, off, swir16, swir22):
        return {
            k: np.array([v], dtype="float32")
            for k, v in dict(
                ndvi_p10=p10, ndvi_p50=p50, ndvi_leaf_on=on, ndvi_leaf_off=off,
                red_leaf_on=0.03, nir_leaf_on=0.40, swir16_leaf_on=swir16, swir22_leaf_on=swir22,
            ).items()
        }  # fmt: skip

    t = MetricThresholds()
    winter_wheat = stats(p10=0.22, p50=0.45, on=0.86, off=0.38, swir16=0.16, swir22=0.07)
    beech = stats(p10=0.30, p50=0.72, on=0.88, off=0.45, swir16=0.17, swir22=0.08)
    assert tree_probability(winter_wheat, t)[0] < 0.2
    assert tree_probability(beech, t)[0] > 0.8
