"""Fusion when a sensor is missing or masked, reference water, and the scoring arithmetic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from geoproc.errors import UsageError
from geoproc.products.flood import fusion as F
from geoproc.products.flood import reference as R
from geoproc.products.flood.score import score


def test_fusion_one_sensor_missing_or_masked():
    po = np.array([0.9, np.nan, 0.1, np.nan], np.float32)
    ps = np.array([0.2, 0.8, np.nan, np.nan], np.float32)
    p, src = F.fuse(po, ps, optical_weight=0.6)
    assert p[0] == pytest.approx(0.6 * 0.9 + 0.4 * 0.2)
    assert p[1] == pytest.approx(0.8) and p[2] == pytest.approx(0.1)
    assert np.isnan(p[3])
    assert src.tolist() == [F.SOURCE_OPTICAL | F.SOURCE_SAR, F.SOURCE_SAR, F.SOURCE_OPTICAL, 0]
    p_only, src_only = F.fuse(None, ps)
    np.testing.assert_allclose(p_only[:2], ps[:2])
    assert src_only.tolist() == [2, 2, 0, 0]
    with pytest.raises(ValueError):
        F.fuse(None, None)


def test_entropy_peaks_at_one_half_and_keeps_nan():
    h = F.binary_entropy(np.array([0.5, 0.0, 1.0, 0.25, np.nan]))
    assert h[0] == pytest.approx(1.0)
    assert h[1] == pytest.approx(0.0, abs=1e-6) and h[2] == pytest.approx(0.0, abs=1e-6)
    assert h[3] == pytest.approx(-(0.25 * np.log2(0.25) + 0.75 * np.log2(0.75)))
    assert np.isnan(h[4])


def test_reference_from_history_frequency_and_minimum_observations():
    nan = np.nan
    # pixel a: water 4/4; b: water 2/4 (a flood); c: water 3/4; d: one valid look only
    per_pixel = np.array([[1, 1, 1, 1], [1, 0, 1, 0], [1, 1, 0, 1], [nan, nan, 1, nan]], np.float32)
    w = per_pixel.T[:, None, :]  # (time, y=1, x=4)
    ref = R.reference_from_history(w, min_frequency=0.75, min_observations=2)[0]
    assert ref[:3].tolist() == [1, 0, 1]
    assert np.isnan(ref[3])
    ref1 = R.reference_from_history(w[:1], min_observations=2)[0]
    assert np.isnan(ref1).all()


def test_reference_layer_values_and_shape_check():
    layer = np.array([[0, 1, 2], [255, -1, np.nan]])
    ref = R.reference_from_layer(layer, shape=(2, 3))
    assert ref[0].tolist() == [0, 1, 0]
    assert np.isnan(ref[1]).all()
    with pytest.raises(UsageError, match="same \\(y, x\\) grid"):
        R.reference_from_layer(layer, shape=(3, 3))


def _pred(values: np.ndarray, dates) -> xr.Dataset:
    return xr.Dataset(
        {"water": (("time", "y", "x"), values.astype(np.uint8))},
        coords={"time": pd.to_datetime(dates)},
    )


def test_score_hand_computed():
    truth = np.array([[[0, 1, 2, 2], [0, 0, 255, 2]]])  # 7 valid truth pixels
    pred = np.array([[[0, 1, 2, 0], [2, 0, 1, 255]]])
    # scored (both valid): 6 px; water TP: (0,1),(0,2) = 2; FP: (1,0) = 1; FN: (0,3) = 1
    # flood TP: (0,2) = 1; FP: (1,0) = 1; FN: (0,3) = 1
    s = score(_pred(pred, ["2024-05-01"]), truth)
    o = s["overall"]
    assert o["pixels_truth"] == 7 and o["pixels_scored"] == 6
    assert o["coverage"] == pytest.approx(6 / 7)
    assert o["water"]["iou"] == pytest.approx(2 / 4) and o["water"]["f1"] == pytest.approx(4 / 6)
    assert o["flood"]["iou"] == pytest.approx(1 / 3) and o["flood"]["f1"] == pytest.approx(2 / 4)
    assert list(s["per_date"]) == ["2024-05-01"]


def test_score_matches_truth_by_date_from_dict_and_folder(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    t1 = np.array([[0, 2], [1, 0]], np.uint8)
    pred = np.stack([t1, t1, np.zeros_like(t1)])
    ds = _pred(pred, ["2024-05-01", "2024-05-13", "2024-05-25"])
    s = score(ds, {"2024-05-13": t1, "2024-05-25": t1})
    assert list(s["per_date"]) == ["2024-05-13", "2024-05-25"]
    assert s["per_date"]["2024-05-13"]["water"]["iou"] == 1.0
    assert s["per_date"]["2024-05-25"]["water"]["iou"] == 0.0
    assert s["overall"]["water"]["iou"] == pytest.approx(2 / 4)
    folder = tmp_path / "truth" / "flood" / "T1"
    folder.mkdir(parents=True)
    with rasterio.open(
        folder / "2024-05-13.tif",
        "w",
        driver="GTiff",
        width=2,
        height=2,
        count=1,
        dtype="uint8",
        crs="EPSG:32633",
        transform=rasterio.transform.from_origin(0, 60, 30, 30),
    ) as dst:
        dst.write(t1, 1)
    s2 = score(ds, folder)
    assert s2["overall"]["water"]["iou"] == 1.0 and list(s2["per_date"]) == ["2024-05-13"]
    with pytest.raises(UsageError):
        score(ds, {"2023-01-01": t1})
    with pytest.raises(UsageError, match="same grid"):
        score(ds, {"2024-05-13": np.zeros((3, 3))})


def test_reliability_table_and_calibration_error_hand_computed():
    from geoproc.products.flood.score import (
        expected_calibration_error,
        pool_reliability,
        reliability,
    )

    prob = np.array([0.03, 0.03, 0.03, 0.03, 0.97, 0.97, 1.0, np.nan])
    truth = np.array([0, 0, 0, 1, 1, 1, 0, 1], bool)
    table = reliability(prob, truth)
    by = {b["bin"]: b for b in table}
    assert len(table) == 10 and sum(b["n"] for b in table) == 7  # NaN left out
    assert by["0.0-0.1"]["n"] == 4 and by["0.0-0.1"]["observed_water"] == 0.25
    assert by["0.9-1.0"]["n"] == 3  # 1.0 falls in the last bin
    assert by["0.9-1.0"]["mean_probability"] == pytest.approx((0.97 + 0.97 + 1.0) / 3)
    assert by["0.9-1.0"]["observed_water"] == pytest.approx(2 / 3)
    assert np.isnan(by["0.5-0.6"]["mean_probability"]) and by["0.5-0.6"]["n"] == 0
    # |0.03 - 0.25| x 4 + |0.98 - 0.667| x 3, over 7 pixels
    assert expected_calibration_error(table) == pytest.approx(
        (4 * 0.22 + 3 * abs(2.94 / 3 - 2 / 3)) / 7
    )
    pooled = pool_reliability([table, table])
    assert [b["n"] for b in pooled] == [2 * b["n"] for b in table]
    assert pooled[0]["observed_water"] == 0.25 and np.isnan(pooled[5]["observed_water"])
