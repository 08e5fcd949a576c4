"""The canopy product on the real Slovenian NDVI series shipped in tests/data/realdata."""

from __future__ import annotations

import numpy as np
import pytest

from geoproc.products.canopy.metric_rules import MetricThresholds
from geoproc.products.canopy.real_cases import (
    balanced_accuracy,
    calibrate_ndvi_only_threshold,
    evaluate_real,
    slovenia_case,
)
from tests.helpers.paths import REPO_ROOT

SLOVENIA = REPO_ROOT / "tests" / "data" / "realdata" / "s2-ndvi-slovenia"


def test_balanced_accuracy_by_hand():
    truth = np.array([True, True, False, False, False, False])
    predicted = np.array([True, False, False, False, False, True])
    assert balanced_accuracy(predicted, truth) == pytest.approx(0.5 * (1 / 2 + 3 / 4))


def test_the_copy_reads_as_a_user_dataset_with_its_crs_and_reference():
    ds, lulc = slovenia_case(SLOVENIA)
    assert ds.sizes == {"time": 68, "y": 101, "x": 100}
    assert ds.rio.crs.to_epsg() == 32633
    assert int((lulc == 2).sum()) == 7601
    assert abs(float(ds.x[1] - ds.x[0]) - 10.0) < 0.1


def test_shipped_ndvi_only_threshold_is_the_west_half_calibration():
    threshold, west_ba = calibrate_ndvi_only_threshold(SLOVENIA)
    assert threshold == pytest.approx(MetricThresholds().ndvi_only_p10, abs=1e-6)
    assert 0.80 < west_ba < 0.85  # measured 0.824 with the mapping unit (0.805 per pixel)


def test_slovenia_row_scores_the_held_out_east_half():
    rows = evaluate_real([SLOVENIA, SLOVENIA.parent])
    assert [r["case"] for r in rows] == ["s2-ndvi-slovenia"]
    row = rows[0]
    assert row["metric"] == "balanced accuracy (tree vs non-tree)" and row["kind"] == "real"
    # measured 0.905 with the FAO 0.5 ha mapping unit; per pixel the same rule gives 0.856,
    # the west-calibrated p10 baseline 0.863 and the oracle p10 threshold 0.867
    assert 0.89 <= row["geoproc"] <= 0.92
    assert row["geoproc"] >= row["baselines"]["p10 NDVI threshold"] + 0.03
    assert row["geoproc"] >= row["baselines"]["per-pixel (mapping_unit_ha=0)"] + 0.03
    # the other fold of the spatial split (calibrated east, scored west): measured 0.823,
    # 0.799 per pixel
    assert 0.81 <= row["held_out_other_fold"] <= 0.84
    # beyond 20 m of a reference edge the target is met (measured 0.981; 0.890 per pixel)
    assert row["geoproc_beyond_20m_of_reference_edges"] >= 0.97
    assert row["n_pixels"] == 10018


def test_slovenia_errors_lie_on_reference_edges_and_canopy_loss():
    """The diagnostic behind the missed 0.95: most errors sit in the 1-2 px band along the
    reference's polygon edges, a block of forest lost its canopy in 2017 (the reference is
    older), and shrubland is the class most often taken for trees."""
    (row,) = evaluate_real([SLOVENIA])
    b = row["error_breakdown"]
    assert b["errors"] == 798 and b["pixel_years"] == row["n_pixels"]
    # 13 % of the pixel-years lie within 10 m of an edge, 63 % of the errors (measured)
    assert b["pixel_share_within_10m_of_edge"] < 0.15
    assert b["share_within_10m_of_edge"] > 0.55
    assert b["share_within_20m_of_edge"] > 0.70
    # 64 forest pixels lost their canopy in 2017; 61 of the 798 errors are on them
    assert 55 <= b["errors_on_canopy_loss"] <= b["forest_pixels_with_canopy_loss"] <= 70
    rates = b["error_rate_by_class"]
    assert rates["shrubland"] == max(v for v in rates.values() if v is not None)
    # reported beside the headline, never in its place: measured 0.965 beyond 10 m
    assert (
        0.95
        <= row["geoproc_beyond_10m_of_reference_edges"]
        < (row["geoproc_beyond_20m_of_reference_edges"])
    )
    assert row["geoproc"] < row["geoproc_beyond_10m_of_reference_edges"]


def test_the_tree_maps_of_the_calibration_are_the_products():
    from geoproc.products import canopy
    from geoproc.products.canopy.real_cases import _slovenia_metrics, ndvi_only_tree_maps

    ds, _ = slovenia_case(SLOVENIA)
    maps = ndvi_only_tree_maps(ds, _slovenia_metrics(ds), MetricThresholds().ndvi_only_p10)
    out = canopy.run(ds)
    for year, tree in maps.items():
        np.testing.assert_array_equal(np.isin(out["canopy_class"].sel(year=year), (1, 2)), tree)
