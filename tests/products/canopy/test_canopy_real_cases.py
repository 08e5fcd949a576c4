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
    assert threshold == pytest.approx(MetricThresholds().ndvi_only_p10, abs=0.005)
    assert 0.78 < west_ba < 0.83


def test_slovenia_row_scores_the_held_out_east_half():
    rows = evaluate_real([SLOVENIA, SLOVENIA.parent])
    assert [r["case"] for r in rows] == ["s2-ndvi-slovenia"]
    row = rows[0]
    assert row["metric"] == "balanced accuracy (tree vs non-tree)" and row["kind"] == "real"
    # measured 0.866 (p10 baseline 0.863); an NDVI-only ceiling: the oracle threshold 0.867
    assert 0.85 <= row["geoproc"] <= 0.88
    assert row["geoproc"] >= row["baselines"]["p10 NDVI threshold"] - 0.005
    assert row["n_pixels"] == 10018
