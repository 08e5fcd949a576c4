"""The product with the rule baseline on hand-made series, nodata, sparse input and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from geoproc.errors import UsageError
from geoproc.products import canopy
from tests.helpers.canopy_series import class_grid, synthetic_dataset, truth_of

KINDS = ["broadleaf", "conifer", "evergreen_broadleaf", "grass", "crop"]


@pytest.mark.parametrize("south", [False, True], ids=["north", "south"])
def test_rules_classify_every_kind_in_both_hemispheres(south):
    classes = class_grid(KINDS, repeat=3)
    out = canopy.run(synthetic_dataset(classes, south=south, seed=2), method="rules")
    assert out["canopy_class"].dims == ("year", "y", "x")
    assert out["year"].values.tolist() == [2024]
    np.testing.assert_array_equal(out["canopy_class"].values[0], truth_of(classes))
    cover = out["canopy_cover"].values[0]
    trees = truth_of(classes) > 0
    assert cover[~trees].max() == 0 and cover[trees].min() >= 60
    assert out["canopy_probability"].values[0].min() >= 50  # chosen class is the most likely


def test_evergreen_broadleaf_is_not_conifer_and_conifer_is():
    classes = class_grid(["evergreen_broadleaf", "conifer"], repeat=3)
    ds = synthetic_dataset(classes, seed=4, cloud_fraction=0.7)  # a cloudy tropical year
    out = canopy.run(ds, method="rules", latitude=-3.0)
    cls = out["canopy_class"].values[0]
    assert (cls[:, :3] == 1).all() and (cls[:, 3:] == 2).all()


@pytest.mark.parametrize("method", ["rules", "metrics"])
def test_masked_everywhere_pixel_is_nodata_in_every_variable(method):
    ds = synthetic_dataset(class_grid(["broadleaf"], repeat=3), seed=5)
    for band in ds.data_vars:
        ds[band][:, 1, 1] = np.nan
    out = canopy.run(ds, method=method).isel(year=0)
    for name in ("canopy_class", "canopy_cover", "canopy_probability"):
        assert out[name].values[1, 1] == 255, name
        assert (out[name].values[0] != 255).all(), name
    assert out["canopy_clear_count"].values[1, 1] == 0
    assert out["canopy_seasons_covered"].values[1, 1] == 0


def test_three_seasonal_composites_give_valid_output_with_less_evidence():
    classes = class_grid(["broadleaf", "conifer", "grass"], repeat=3)
    dense = synthetic_dataset(classes, seed=6, cloud_fraction=0.3)
    times = pd.DatetimeIndex(["2024-04-15", "2024-07-15", "2024-10-15"])  # spring, summer, autumn
    sparse = synthetic_dataset(classes, seed=6, times=times, cloud_fraction=0.0)
    out_dense = canopy.run(dense, method="rules").isel(year=0)
    out_sparse = canopy.run(sparse, method="rules").isel(year=0)
    np.testing.assert_array_equal(out_sparse["canopy_class"].values, truth_of(classes))
    assert (out_sparse["canopy_clear_count"].values == 3).all()
    assert (out_sparse["canopy_months_observed"].values == 3).all()
    assert (out_sparse["canopy_seasons_covered"].values == 3).all()
    assert (out_dense["canopy_clear_count"].values > 30).all()
    assert (out_dense["canopy_seasons_covered"].values == 4).all()


def test_min_clear_turns_thin_evidence_into_nodata():
    times = pd.DatetimeIndex(["2024-04-15", "2024-07-15", "2024-10-15"])
    sparse = synthetic_dataset(class_grid(["conifer"], repeat=2), times=times, cloud_fraction=0)
    out = canopy.run(sparse, method="rules", min_clear=4)
    assert (out["canopy_class"].values == 255).all()


def test_each_year_gets_its_own_layer():
    times = pd.date_range("2023-01-05", "2024-12-28", freq="10D")
    classes = class_grid(["broadleaf", "grass"], repeat=2)
    out = canopy.run(synthetic_dataset(classes, times=times, seed=8), method="rules")
    assert out["year"].values.tolist() == [2023, 2024]
    for year in (2023, 2024):
        np.testing.assert_array_equal(out["canopy_class"].sel(year=year).values, truth_of(classes))


def test_explicit_hemisphere_wins_over_a_missing_crs_and_dask_input_stays_lazy():
    ds = synthetic_dataset(class_grid(["broadleaf", "conifer"], repeat=2), south=True, seed=9)
    ds = ds.drop_vars("spatial_ref").chunk({"time": 10, "y": 1, "x": 2})
    with pytest.raises(UsageError, match="hemisphere="):
        canopy.run(ds, method="rules")
    out = canopy.run(ds, method="rules", hemisphere="south")
    assert out["canopy_class"].chunks is not None
    assert out["canopy_class"].values[0].tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]


def test_cf_attributes_and_grid_mapping_are_set():
    out = canopy.run(synthetic_dataset(class_grid(["grass"], repeat=2)), method="rules")
    cls = out["canopy_class"]
    assert cls.attrs["flag_meanings"] == "no_tree broadleaf conifer"
    assert cls.attrs["flag_values"].tolist() == [0, 1, 2]
    assert cls.encoding["_FillValue"] == 255
    assert cls.attrs["grid_mapping"] == "spatial_ref"
    assert out["canopy_cover"].attrs["units"] == "percent"
    assert out.attrs["product"] == "canopy"
    assert "spatial_ref" in out.coords


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ds: ds.drop_vars("swir22"), "swir22"),
        (lambda ds: ds.assign_coords(time=np.arange(ds.sizes["time"])), "datetime64"),
        (lambda ds: ds.expand_dims(band=[1]), "drop or select"),
    ],
)
def test_bad_input_is_a_usage_error_naming_the_fix(change, message):
    ds = change(synthetic_dataset(class_grid(["grass"], repeat=1)))
    with pytest.raises(UsageError, match=message):
        canopy.run(ds, method="rules")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "magic"}, "method="),
        ({"hemisphere": "east"}, "north"),
        ({"latitude": 123.0}, "-90"),
        ({"latitude": 10.0, "hemisphere": "north"}, "not both"),
        ({"min_clear": 0}, "min_clear"),
    ],
)
def test_bad_options_are_usage_errors(options, message):
    ds = synthetic_dataset(class_grid(["grass"], repeat=1))
    with pytest.raises(UsageError, match=message):
        canopy.run(ds, **({"method": "rules"} | options))


def test_single_scene_without_time_dimension_is_accepted_with_a_time_coordinate():
    ds = synthetic_dataset(class_grid(["conifer"], repeat=2), cloud_fraction=0).isel(time=30)
    assert "time" not in ds.dims
    out = canopy.run(ds, method="rules")
    assert (out["canopy_clear_count"].values == 1).all()
    assert (out["canopy_class"].values == 2).all()
    xr.testing.assert_equal(out["x"], ds["x"])
