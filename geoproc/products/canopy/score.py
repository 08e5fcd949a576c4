"""Accuracy figures for a canopy type map against a reference map.

Method: confusion matrix, overall accuracy, per-class precision / recall / F1 (Congalton
1991, Remote Sens. Environ. 37:35; Olofsson et al. 2014, Remote Sens. Environ. 148:42), and
one-vs-rest ROC-AUC per class from the class probabilities, computed with the
Mann-Whitney rank statistic (Hanley & McNeil 1982, Radiology 143:29) so ties are handled
exactly. Pixels that are no data in either map (255) are left out and counted.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from geoproc.errors import UsageError

CLASS_NAMES = ("no_tree", "broadleaf", "conifer")
NODATA = 255


def score(
    predicted: np.ndarray,
    truth: np.ndarray,
    *,
    probabilities: np.ndarray | None = None,
) -> dict:
    """Overall accuracy, per-class F1 and (with ``probabilities`` (3, ...)) ROC-AUC."""
    predicted = np.asarray(predicted).reshape(-1)
    truth = np.asarray(truth).reshape(-1)
    if predicted.shape != truth.shape:
        raise UsageError(
            f"predicted and truth maps differ in size ({predicted.size} vs {truth.size}): "
            "score maps on the same grid"
        )
    n_classes = len(CLASS_NAMES)
    valid = (predicted != NODATA) & (truth != NODATA) & (truth < n_classes)
    p, t = predicted[valid].astype("int64"), truth[valid].astype("int64")
    confusion = np.zeros((n_classes, n_classes), dtype="int64")
    np.add.at(confusion, (t, np.minimum(p, n_classes - 1)), 1)
    per_class = {}
    for k, name in enumerate(CLASS_NAMES):
        tp = confusion[k, k]
        precision = tp / confusion[:, k].sum() if confusion[:, k].sum() else float("nan")
        recall = tp / confusion[k, :].sum() if confusion[k, :].sum() else float("nan")
        f1 = (
            2 * precision * recall / (precision + recall)
            if np.isfinite(precision) and np.isfinite(recall) and (precision + recall) > 0
            else float("nan")
        )
        per_class[name] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": int(confusion[k, :].sum()),
        }
    result = {
        "overall_accuracy": float(np.trace(confusion) / max(confusion.sum(), 1)),
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
        "n_scored": int(valid.sum()),
        "n_excluded_nodata": int((~valid).sum()),
    }
    if probabilities is not None:
        probs = np.asarray(probabilities).reshape(n_classes, -1)[:, valid]
        for k, name in enumerate(CLASS_NAMES):
            per_class[name]["roc_auc"] = roc_auc(probs[k], t == k)
        aucs = [per_class[n]["roc_auc"] for n in CLASS_NAMES]
        result["macro_roc_auc"] = float(np.nanmean(aucs)) if np.isfinite(aucs).any() else None
    return result


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for boolean ``positive`` (NaN if one class)."""
    scores = np.asarray(scores, dtype="float64")
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
