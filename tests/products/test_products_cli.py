"""Each product through `geoproc run PRODUCT --catalog URL --aoi TILE --start --end --out`.

One processing tile and the shortest range each product makes sense on: flood over the
flood peak (optical + SAR, 3 weeks), LST on one Landsat overpass, canopy over its calendar
year. The stores must describe themselves (CF units, flags, provenance) so an analyst can
use them without geoproc, and hold values in their physical ranges. `test_pipeline.py`
scores the whole demo run; this checks what the CLI writes, product by product.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from geoproc.cli import main
from geoproc.products import canopy, flood, lst

pytestmark = pytest.mark.integration

TILE = "32N_0188_1371"
CF_VARIABLE_ATTRS = {
    "units",
    "long_name",
    "standard_name",
    "flag_values",
    "flag_masks",
    "flag_meanings",
    "valid_range",
    "_FillValue",
    "grid_mapping",
    "scale_factor",
    "add_offset",
    "coordinates",
}
"""What a product variable may carry; anything else leaked from the inputs."""


@pytest.fixture(autouse=True)
def _trust_the_local_archive(monkeypatch):
    """The sample archive's assets are local files served by a loopback STAC API: trusted."""
    monkeypatch.setenv("GEOPROC_ALLOW_LOCAL_ASSETS", "true")


def _run(module, url, out, *, start, end, collections=None):
    product = module.SPEC.name
    argv = ["run", product, "--catalog", url, "--aoi", TILE, "--tile-size", "128"]
    argv += ["--start", start, "--end", end, "--out", str(out), "--no-publish", "-q"]
    if collections:
        argv += ["--collections", collections]
    assert main(argv) == 0
    path = out / "products" / product / f"{TILE}.zarr"
    return (
        xr.open_zarr(path, mask_and_scale=False),
        xr.open_zarr(path),
    )


def _check_spec_attrs(raw: xr.Dataset, module, *, strict_leaks: bool = True) -> None:
    spec = module.SPEC
    assert raw.attrs["product"] == spec.name
    assert raw.attrs["algorithm_version"] == spec.version
    assert raw.attrs["method"] == spec.method
    assert raw.attrs["Conventions"] == "CF-1.8"
    assert raw.attrs["source_cube"].endswith(f"cubes/{TILE}.zarr")
    assert len(raw.attrs["geoproc:input_fingerprint"]) == 64
    assert isinstance(json.loads(raw.attrs["parameters"]), dict)
    assert raw.rio.crs.to_epsg() == 32632
    for v in spec.outputs:
        if v.name not in raw:
            continue
        attrs = raw[v.name].attrs
        assert attrs["units"] == v.units, v.name
        assert attrs["long_name"] == v.long_name, v.name
        assert attrs["grid_mapping"] == "spatial_ref", v.name
        assert attrs.get("standard_name") == v.standard_name, v.name
        for key in ("flag_values", "flag_masks", "valid_range"):
            expected = getattr(v, key)
            if expected is None:
                assert key not in attrs, (v.name, key)
            else:
                np.testing.assert_array_equal(attrs[key], expected, err_msg=f"{v.name}.{key}")
        if v.flag_meanings is not None:
            assert attrs["flag_meanings"].split() == list(v.flag_meanings), v.name
            n = len(v.flag_meanings)
            assert len(v.flag_values or v.flag_masks) == n, v.name
        if strict_leaks:
            assert set(attrs) <= CF_VARIABLE_ATTRS, (v.name, sorted(set(attrs) - CF_VARIABLE_ATTRS))


def test_flood_through_the_cli(tmp_path, stac_api_small):
    raw, ds = _run(flood, stac_api_small, tmp_path, start="2024-05-20", end="2024-06-10")
    _check_spec_attrs(raw, flood)
    assert ds.sizes["time"] >= 4 and set(ds["platform"].values.astype(str)) >= {"L30", "S1"}
    # water classes: the flood peak (22-27 May) must show flood water next to reference water
    classes = raw["water"].values
    assert set(np.unique(classes).tolist()) <= {0, 1, 2, 255}
    assert (classes == 1).any() and (classes == 2).any()
    assert np.isnan(ds["water"].values).sum() == (classes == 255).sum()
    prob = raw["water_probability"].values
    assert prob[prob != 255].max() <= 100
    unc = ds["uncertainty"].values
    assert np.nanmin(unc) >= 0.0 and np.nanmax(unc) <= 1.0
    # probability and class agree: no water class where p < 50 %
    water = (classes == 1) | (classes == 2)
    assert (prob[water] >= 50).all()


def test_lst_through_the_cli(tmp_path, stac_api_small):
    raw, ds = _run(
        lst,
        stac_api_small,
        tmp_path,
        start="2024-05-21",
        end="2024-05-21",
        collections="HLSL30_2.0",
    )
    _check_spec_attrs(raw, lst)
    assert ds.sizes["time"] == 1 and str(ds["platform"].values[0]) == "L30"
    params = json.loads(raw.attrs["parameters"])
    assert params["method"] == "auto" and params["cloud_screen"]["margin_k"] == 4.0
    values, qa = ds["lst"].values, raw["lst_qa"].values
    valid = np.isfinite(values)
    assert valid.mean() > 0.5
    # late-May midday in the Alpine foreland: physical, and within the CF valid_range
    assert 270.0 < np.nanpercentile(values, 1) and np.nanpercentile(values, 99) < 325.0
    assert raw["lst_qa"].dtype == np.uint16
    # QA agrees with the data: masked bit exactly where there is no LST; RTE (atmosphere
    # from the item) everywhere else; uncertainty and emissivity present wherever LST is
    assert (((qa & lst.QA_MASKED) > 0) == ~valid).all()
    assert (((qa[valid] >> lst.QA_METHOD_SHIFT) & 3) == lst.METHOD_CODES["rte"]).all()
    assert (np.isfinite(ds["lst_uncertainty"].values) == valid).all()
    assert np.nanmin(ds["lst_uncertainty"].values) > 0.0
    eps = ds["emissivity"].values[valid]
    assert 0.94 < eps.min() and eps.max() <= 0.995


def test_canopy_through_the_cli_over_its_year(tmp_path, stac_api_small):
    raw, ds = _run(
        canopy,
        stac_api_small,
        tmp_path,
        start="2024-01-01",
        end="2024-12-31",
        collections="HLSL30_2.0,HLSS30_2.0",
    )
    _check_spec_attrs(raw, canopy, strict_leaks=False)
    assert ds["year"].values.tolist() == [2024]
    classes = raw["canopy_class"].values
    assert set(np.unique(classes).tolist()) <= {0, 1, 2, 255}
    assert len(set(np.unique(classes).tolist()) & {0, 1, 2}) >= 2  # forest and open land
    cover = raw["canopy_cover"].values
    assert cover[cover != 255].max() <= 100
    # no canopy class without canopy: where class is no_tree, cover stays low, and back
    assert np.median(cover[classes == 0]) < np.median(cover[(classes == 1) | (classes == 2)])
    months = raw["canopy_months_observed"].values
    assert months.max() <= 12 and months.max() >= 6  # a year of HLS over central Europe
    seasons = raw["canopy_seasons_covered"].values
    assert seasons.max() == 4
    prob = raw["canopy_probability"].values
    assert prob[prob != 255].min() >= 33 and prob[prob != 255].max() <= 100


def test_canopy_variables_carry_only_cf_attributes(tmp_path, stac_api_small):
    raw, _ = _run(canopy, stac_api_small, tmp_path, start="2024-06-01", end="2024-06-10")
    for v in canopy.SPEC.outputs:
        if v.name in raw:
            assert set(raw[v.name].attrs) <= CF_VARIABLE_ATTRS, v.name
