"""Score a flood product against ground truth: IoU and F1 for water and for flood, per date.

Method: the pixel-wise confusion-matrix scores used by flood mapping benchmarks
(Sen1Floods11, Bonafilia et al. 2020, CVPRW; the OPERA DSWx validation plan): IoU =
TP / (TP + FP + FN), F1 = 2TP / (2TP + FP + FN), on two binary questions: water (classes
1 and 2) vs not water, and flood (class 2) vs everything else. Pixels that are no data in
the truth are ignored; pixels the product leaves as no data are counted separately as
lost coverage rather than silently improving the scores.
Truth codes (sample archive): 0 dry, 1 permanent water, 2 flood; anything else is no data.

Whether the stated probability can be trusted is a separate question from the map's
accuracy: `reliability` bins the water probability and compares each bin's mean with the
observed water share (a reliability diagram, DeGroot & Fienberg 1983; Niculescu-Mizil &
Caruana 2005), and `expected_calibration_error` summarises it (Naeini et al. 2015: the
pixel-weighted mean gap between stated and observed frequency).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from geoproc.errors import UsageError

_TRUTH_CLASSES = (0, 1, 2)
_PRED_NODATA = 255
PROBABILITY_BINS = np.linspace(0.0, 1.0, 11)
"""Ten bins of width 0.1; the last one includes 1.0."""


def score(pred: xr.Dataset | xr.DataArray, truth, *, variable: str = "water") -> dict:
    """Scores per date and overall; ``truth`` is an array, a DataArray, {date: array} or a folder.

    A folder holds one GeoTIFF per date named ``{date}.tif`` (e.g. ``2024-05-01.tif``), as in
    ``ARCHIVE/truth/flood/{granule}/``; dates are matched on the calendar day.
    """
    p = pred[variable] if isinstance(pred, xr.Dataset) else pred
    if "time" not in p.dims:
        p = p.expand_dims("time")
    p = p.transpose("time", "y", "x")
    truth_stack, dates = _align_truth(p, truth)
    per_date: dict[str, dict] = {}
    totals = {"water": np.zeros(3, np.int64), "flood": np.zeros(3, np.int64)}
    n_truth = n_scored = 0
    for i, label in enumerate(dates):
        t = truth_stack[i]
        if t is None:
            continue
        pv = np.asarray(p.values[i])
        counts = _counts(pv, t)
        per_date[label] = _summarise(counts)
        for k in totals:
            totals[k] += counts[k]
        n_truth += counts["n_truth"]
        n_scored += counts["n_scored"]
    if not per_date:
        raise UsageError(
            "no time step of the product has a truth layer; check that the truth dates "
            f"({', '.join(dates) or 'none'}) match the product's time coordinate"
        )
    overall = _summarise({**totals, "n_truth": n_truth, "n_scored": n_scored})
    return {"overall": overall, "per_date": per_date}


def _counts(pred: np.ndarray, truth: np.ndarray) -> dict:
    if pred.shape != truth.shape:
        raise UsageError(
            f"truth has shape {truth.shape} but the product has {pred.shape}; score on the same grid"
        )
    t = np.asarray(truth)
    t_valid = np.isin(t, _TRUTH_CLASSES)
    p_valid = np.isin(pred, _TRUTH_CLASSES) & (pred != _PRED_NODATA)
    both = t_valid & p_valid
    out: dict = {"n_truth": int(t_valid.sum()), "n_scored": int(both.sum())}
    for name, positive in (("water", (1, 2)), ("flood", (2,))):
        tp_ = np.isin(t, positive) & both
        pp_ = np.isin(pred, positive) & both
        out[name] = np.array(
            [
                int((tp_ & pp_).sum()),
                int((~tp_ & pp_ & both).sum()),
                int((tp_ & ~pp_ & both).sum()),
            ],
            np.int64,
        )
    return out


def _summarise(c: dict) -> dict:
    res: dict = {
        "pixels_truth": int(c["n_truth"]),
        "pixels_scored": int(c["n_scored"]),
        "coverage": float(c["n_scored"] / c["n_truth"]) if c["n_truth"] else float("nan"),
    }
    for name in ("water", "flood"):
        tp, fp, fn = (int(v) for v in c[name])
        res[name] = {
            "iou": tp / (tp + fp + fn) if tp + fp + fn else float("nan"),
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan"),
            "precision": tp / (tp + fp) if tp + fp else float("nan"),
            "recall": tp / (tp + fn) if tp + fn else float("nan"),
            "tp": tp,
            "fp": fp,
            "fn": fn,
        }
    return res


def _align_truth(p: xr.DataArray, truth) -> tuple[list[np.ndarray | None], list[str]]:
    times = p["time"].values if "time" in p.coords else np.arange(p.sizes["time"])
    labels = [_day(t) for t in times]
    if isinstance(truth, str | Path):
        truth = _read_folder(Path(truth))
    if isinstance(truth, dict):
        by_day = {_day(k): np.asarray(v) for k, v in truth.items()}
        return [by_day.get(lbl) for lbl in labels], labels
    arr = np.asarray(truth.values if isinstance(truth, xr.DataArray) else truth)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.shape[0] != len(labels):
        raise UsageError(
            f"truth has {arr.shape[0]} time steps but the product has {len(labels)}; "
            "pass a dict {date: array} or a folder of {date}.tif to match dates"
        )
    return list(arr), labels


def _read_folder(folder: Path) -> dict:
    import rasterio

    if not folder.is_dir():
        raise UsageError(f"truth folder {folder} does not exist; pass ARCHIVE/truth/flood/GRANULE")
    out = {}
    for tif in sorted(folder.glob("*.tif")):
        with rasterio.open(tif) as src:
            out[tif.stem] = src.read(1)
    if not out:
        raise UsageError(f"truth folder {folder} holds no {{date}}.tif files")
    return out


def _day(value) -> str:
    try:
        return pd.Timestamp(value).strftime("%Y-%m-%d")
    except (ValueError, TypeError):
        return str(value)


def reliability(
    probability: np.ndarray, truth: np.ndarray, *, bins: np.ndarray = PROBABILITY_BINS
) -> list[dict]:
    """Per probability bin: pixels, mean stated probability, observed water share.

    ``probability`` in 0-1 and ``truth`` (bool) on the same scored pixels (flattened); NaN
    probabilities are left out. Empty bins have ``n`` 0 and NaN means.
    """
    p = np.asarray(probability, np.float64).ravel()
    t = np.asarray(truth, bool).ravel()
    keep = np.isfinite(p)
    p, t = p[keep], t[keep]
    k = np.clip(np.digitize(p, bins[1:-1]), 0, len(bins) - 2)
    out = []
    for b in range(len(bins) - 1):
        sel = k == b
        n = int(sel.sum())
        out.append(
            {
                "bin": f"{bins[b]:.1f}-{bins[b + 1]:.1f}",
                "n": n,
                "mean_probability": float(p[sel].mean()) if n else float("nan"),
                "observed_water": float(t[sel].mean()) if n else float("nan"),
            }
        )
    return out


def pool_reliability(tables: list[list[dict]]) -> list[dict]:
    """One reliability table from several on the same bins (pixel-weighted)."""
    if not tables:
        return []
    out = []
    for k, first in enumerate(tables[0]):
        n = sum(t[k]["n"] for t in tables)
        stated = sum(t[k]["n"] * t[k]["mean_probability"] for t in tables if t[k]["n"])
        observed = sum(t[k]["n"] * t[k]["observed_water"] for t in tables if t[k]["n"])
        out.append(
            {
                "bin": first.get("bin", str(k)),
                "n": int(n),
                "mean_probability": float(stated / n) if n else float("nan"),
                "observed_water": float(observed / n) if n else float("nan"),
            }
        )
    return out


def expected_calibration_error(table: list[dict]) -> float:
    """Pixel-weighted mean |stated - observed| over the bins of a reliability table."""
    n = sum(b["n"] for b in table)
    if not n:
        return float("nan")
    gap = sum(b["n"] * abs(b["mean_probability"] - b["observed_water"]) for b in table if b["n"])
    return float(gap / n)
