"""Accuracy figures checked against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from geoproc.errors import UsageError
from geoproc.products.canopy.score import roc_auc, score


def test_confusion_f1_and_accuracy_match_a_hand_count():
    truth = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 255])
    predicted = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 0])
    result = score(predicted, truth)
    assert result["confusion_matrix"] == [[3, 1, 0], [0, 2, 1], [0, 0, 2]]
    assert result["overall_accuracy"] == pytest.approx(7 / 9)
    assert result["n_scored"] == 9 and result["n_excluded_nodata"] == 1
    broadleaf = result["per_class"]["broadleaf"]
    assert broadleaf["precision"] == pytest.approx(2 / 3)
    assert broadleaf["recall"] == pytest.approx(2 / 3)
    assert broadleaf["f1"] == pytest.approx(2 / 3)
    conifer = result["per_class"]["conifer"]
    assert conifer["f1"] == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))


def test_predicted_nodata_is_excluded_not_counted_as_right():
    result = score(np.array([255, 1]), np.array([1, 1]))
    assert result["n_scored"] == 1 and result["overall_accuracy"] == 1.0


def test_roc_auc_perfect_reversed_and_tied():
    positive = np.array([False, False, True, True])
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), positive) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), positive) == 0.0
    assert roc_auc(np.full(4, 0.5), positive) == 0.5
    # one inversion out of four positive/negative pairs
    assert roc_auc(np.array([0.1, 0.6, 0.5, 0.9]), positive) == pytest.approx(0.75)
    assert np.isnan(roc_auc(np.array([0.1, 0.2]), np.array([True, True])))


def test_score_with_probabilities_gives_per_class_auc():
    truth = np.array([0, 0, 1, 1, 2, 2])
    probabilities = np.array(
        [
            [0.8, 0.7, 0.1, 0.2, 0.1, 0.1],
            [0.1, 0.2, 0.8, 0.6, 0.2, 0.5],
            [0.1, 0.1, 0.1, 0.2, 0.7, 0.4],
        ]
    )
    result = score(probabilities.argmax(axis=0), truth, probabilities=probabilities)
    assert result["per_class"]["no_tree"]["roc_auc"] == 1.0
    # broadleaf scores: positives 0.8, 0.6; negatives 0.1, 0.2, 0.2, 0.5 -> all pairs right
    assert result["per_class"]["broadleaf"]["roc_auc"] == 1.0
    # conifer: positives 0.7, 0.4; negatives 0.1, 0.1, 0.1, 0.2 -> all right
    assert result["macro_roc_auc"] == 1.0
    assert result["per_class"]["broadleaf"]["f1"] == pytest.approx(0.8)  # pixel 5 -> broadleaf


def test_maps_of_different_size_are_a_usage_error():
    with pytest.raises(UsageError, match="same grid"):
        score(np.zeros(3), np.zeros(4))
