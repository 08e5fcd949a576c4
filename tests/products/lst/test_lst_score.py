"""RMSE/bias helper: hand-computed figures and user errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geoproc.errors import NoDataError, UsageError
from geoproc.products.lst.score import score


def test_score_hand_computed_ignores_nan_on_either_side():
    pred = np.array([301.0, 298.0, np.nan, 290.0])
    truth = np.array([300.0, 300.0, 299.0, np.nan])
    s = score(pred, truth)
    assert s["n"] == 2
    assert s["bias"] == pytest.approx((1.0 - 2.0) / 2)
    assert s["rmse"] == pytest.approx(math.sqrt((1.0 + 4.0) / 2))


def test_score_respects_mask():
    s = score(np.array([1.0, 5.0]), np.array([0.0, 0.0]), mask=np.array([True, False]))
    assert s == {"rmse": 1.0, "bias": 1.0, "n": 1}


def test_score_errors_name_the_fix():
    with pytest.raises(UsageError, match="same grid"):
        score(np.zeros(3), np.zeros(4))
    with pytest.raises(NoDataError, match="cover the same"):
        score(np.full(3, np.nan), np.zeros(3))
