"""Score an LST map against a reference: RMSE, bias (prediction minus truth) and pixel count.

The usual validation figures of LST products (e.g. Jimenez-Munoz et al. 2014; Cook et al.
2014), computed on pixels where both maps are finite so masks on either side are honoured.
"""

from __future__ import annotations

import numpy as np

from geoproc.errors import NoDataError, UsageError


def score(pred, truth, *, mask=None) -> dict:
    """``{"rmse", "bias", "n"}`` of `pred` - `truth` (K) over pixels finite in both (and in `mask`)."""
    p = np.asarray(pred, dtype="float64")
    t = np.asarray(truth, dtype="float64")
    if p.shape != t.shape:
        raise UsageError(
            f"Prediction shape {p.shape} differs from truth shape {t.shape}; "
            "put both on the same grid before scoring."
        )
    use = np.isfinite(p) & np.isfinite(t)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != p.shape:
            raise UsageError(f"Mask shape {m.shape} differs from prediction shape {p.shape}.")
        use &= m
    n = int(use.sum())
    if n == 0:
        raise NoDataError(
            "No pixel is finite in both the prediction and the truth (and the mask); "
            "check that they cover the same area and dates."
        )
    diff = p[use] - t[use]
    return {"rmse": float(np.sqrt(np.mean(diff**2))), "bias": float(np.mean(diff)), "n": n}
