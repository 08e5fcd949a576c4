"""The FAO minimum forest area as the product's mapping unit (tree probability averaged over
a 0.5 ha disk on images; isolated pixel series per pixel; masked input never classed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import xarray as xr

from geoproc.errors import UsageError
from geoproc.products import canopy
from geoproc.products.canopy.mapping_unit import MAX_RADIUS_PX, mapping_unit_for
from geoproc.products.canopy.params import CanopyParams

TIMES = pd.date_range("2024-01-05", "2024-12-25", freq="20D")
DOY = TIMES.dayofyear.values


def _ndvi(kind: str) -> np.ndarray:
    """An evergreen forest (winter NDVI 0.45) or a meadow that browns in winter (0.05)."""
    summer = np.clip(np.sin(np.pi * (DOY - 80) / 220), 0, 1)
    low = 0.45 if kind == "forest" else 0.05
    return (low + (0.8 - low) * summer).astype("float32")


def _scene(pixel_m: float = 10.0) -> tuple[xr.Dataset, np.ndarray]:
    """20 x 20 px: forest in the west half with a 2 x 2 px clearing, meadow in the east
    with a 2 x 2 px clump of trees (0.04 ha each at 10 m: far below 0.5 ha)."""
    forest = np.zeros((20, 20), bool)
    forest[:, :10] = True
    forest[9:11, 4:6] = False  # clearing inside the forest
    forest[9:11, 14:16] = True  # clump of trees in the meadow
    ndvi = np.where(forest[None], _ndvi("forest")[:, None, None], _ndvi("meadow")[:, None, None])
    ds = xr.Dataset(
        {"ndvi": (("time", "y", "x"), ndvi.astype("float32"))},
        coords={
            "time": TIMES.values,
            "y": 5_100_000.0 - pixel_m * (np.arange(20) + 0.5),
            "x": 500_000.0 + pixel_m * (np.arange(20) + 0.5),
        },
    )
    return ds.rio.write_crs("EPSG:32633"), forest


def test_clump_and_clearing_below_the_fao_area_take_the_class_of_their_surroundings():
    ds, forest = _scene()
    per_pixel = canopy.run(ds, mapping_unit_ha=0)["canopy_class"].values[0]
    out = canopy.run(ds)
    cls = out["canopy_class"].values[0]
    np.testing.assert_array_equal(per_pixel > 0, forest)  # the rule itself sees every pixel
    assert (cls[:, :10] > 0).all()  # the clearing is forest (FAO: small open areas)
    assert (cls[:, 10:] == 0).all()  # the clump is not (0.04 ha < 0.5 ha)
    assert (out["canopy_cover"].values[0][:, 10:] == 0).all()
    assert out.attrs["mapping_unit"].startswith("tree probability averaged over a 0.49 ha disk")
    assert out["canopy_class"].attrs["grid_mapping"] == "spatial_ref"


def test_masked_pixels_stay_no_data_and_are_left_out_of_their_neighbours_means():
    ds, _ = _scene()
    ndvi = ds["ndvi"].values.copy()
    ndvi[:, 0:3, 9:12] = np.nan  # a cloud over the forest edge, every date
    out = canopy.run(ds.assign(ndvi=(("time", "y", "x"), ndvi)), all_probabilities=True)
    for name in ("canopy_class", "canopy_cover", "canopy_probability"):
        assert (out[name].values[0, 0:3, 9:12] == 255).all(), name
    assert np.isnan(out["canopy_class_probability"].values[0, :, 0:3, 9:12]).all()
    assert (out["canopy_class"].values[0, 0:3, :9] > 0).all()
    assert (out["canopy_class"].values[0, 0:3, 12:] == 0).all()
    # P(tree) of a pixel beside the cloud is the mean over the clear pixels of its disk only
    per_pixel = canopy.run(
        ds.assign(ndvi=(("time", "y", "x"), ndvi)), all_probabilities=True, mapping_unit_ha=0
    )
    p_tree = 1.0 - per_pixel["canopy_class_probability"].values[0, 0].astype("float64")
    oy, ox = np.mgrid[-4:5, -4:5]
    disk = oy**2 + ox**2 <= 16  # 49 px of 10 m: the disk closest to 0.5 ha
    y0, x0 = 1, 8
    window = np.full((9, 9), np.nan)
    window[3:, :] = p_tree[0:6, 4:13]  # rows -3 .. -1 of the disk lie outside the image
    expected = np.nanmean(window[disk])
    got = 1.0 - out["canopy_class_probability"].values[0, 0, y0, x0]
    assert got == pytest.approx(expected, abs=1e-5)
    assert np.isnan(window[disk]).sum() == 9 + 13  # 9 masked, 13 off the image: left out


def test_isolated_pixel_series_are_classified_per_pixel():
    ds, forest = _scene()
    stacked = ds.stack(p=("y", "x")).drop_vars(["p", "y", "x"]).rename(p="y")
    stacked = stacked.assign_coords(y=5_100_000.0 - 10.0 * np.arange(400)).expand_dims(
        x=[500_005.0], axis=-1
    )
    out = canopy.run(stacked.transpose("time", "y", "x").rio.write_crs("EPSG:32633"))
    assert out.attrs["mapping_unit"].startswith("none: the grid is 400 x 1 px")
    np.testing.assert_array_equal(out["canopy_class"].values[0, :, 0] > 0, forest.ravel())


def test_blocks_and_windows_with_the_declared_halo_give_the_whole_image_bytes():
    ds, _ = _scene()
    whole = canopy.run(ds, all_probabilities=True)
    for other in (
        canopy.run(ds, all_probabilities=True, block_size=3),
        canopy.run(ds.chunk({"time": -1, "y": 4, "x": 7}), all_probabilities=True).compute(),
    ):
        for name in whole.data_vars:
            np.testing.assert_array_equal(other[name].values, whole[name].values, err_msg=name)
    # the product stage's cut: a block plus the halo, cropped back to the block
    assert canopy.SPEC.halo == MAX_RADIUS_PX
    big = xr.concat([ds] * 3, dim="y").assign_coords(y=5_100_000.0 - 10.0 * (np.arange(60) + 0.5))
    reference = canopy.run(big)["canopy_class"].values[0]
    halo = 4  # the 0.5 ha disk at 10 m reaches 4 px; any halo >= the radius gives the same
    window = canopy.run(big.isel(y=slice(20 - halo, 40 + halo)))["canopy_class"].values[0]
    np.testing.assert_array_equal(window[halo:-halo], reference[20:40])


@pytest.mark.parametrize(
    ("pixel_m", "crs", "pixels"),
    [(10.0, "EPSG:32633", 49), (30.0, "EPSG:32633", 5), (20.0, "EPSG:32633", 13)],
)
def test_the_disk_holds_about_half_a_hectare_at_each_pixel_size(pixel_m, crs, pixels):
    ds, _ = _scene(pixel_m)
    unit = mapping_unit_for(ds.rio.write_crs(crs), 0.5)
    assert int(unit.footprint.sum()) == pixels
    assert 0.45 <= pixels * pixel_m**2 / 1e4 <= 0.52


def test_coarse_pixels_geographic_grids_and_grids_without_crs():
    ds, _ = _scene(100.0)
    assert mapping_unit_for(ds, 0.5).description.startswith("none: pixels of 100 x 100 m")
    assert mapping_unit_for(ds.drop_vars("spatial_ref"), 0.5).radius_px == 0
    geo = ds.assign_coords(y=46.0 - 0.0001 * np.arange(20), x=14.5 + 0.00013 * np.arange(20))
    unit = mapping_unit_for(geo.rio.write_crs("EPSG:4326"), 0.5)  # ~11 x 10 m pixels
    assert unit.radius_px == 3 and "a 0.50 ha disk (45 px of 10.053 x 11.132 m)" in unit.description
    fine, _ = _scene(1.0)  # 1 m pixels: the disk is capped at the halo
    assert mapping_unit_for(fine, 0.5).radius_px == MAX_RADIUS_PX


@pytest.mark.parametrize("bad", [-0.5, "half", True, 1000.0])
def test_a_bad_mapping_unit_is_a_usage_error_naming_the_option(bad):
    with pytest.raises(UsageError, match="mapping_unit_ha"):
        CanopyParams(mapping_unit_ha=bad)


def test_the_mapping_unit_is_part_of_the_fingerprint():
    assert CanopyParams().fingerprint() != CanopyParams(mapping_unit_ha=0).fingerprint()
    assert CanopyParams().as_attrs()["mapping_unit_ha"] == 0.5
