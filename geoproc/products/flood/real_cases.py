"""Flood scored on the labelled cases found in folders, beside one-line baselines.

Why: the sample archive only says how well flood fits the generator that made it. Each case
is run as a user would run it, `flood.run(dataset)` with default options, and scored on the
same valid pixels as the baselines (Otsu on VV / VH dB: the Sen1Floods11 baseline of
Bonafilia et al. 2020; MNDWI > 0.124 for optical scenes). Three kinds of folder are
recognised:

* Sen1Floods11-style (`S1Hand/*.tif` with VV, VH in dB, `LabelHand/*.tif` with 1 water,
  0 not water, -1 no data, optional `S2Hand/*.tif`, 13 L1C bands x 1e4): real chips a user
  has (the dataset is CC-BY-4.0 but is not shipped here).
* Landsat Collection 2 Level-2 scenes (`*_SR_B*.TIF` + `*_QA_PIXEL.TIF`): real optical
  surface reflectance, scored against the QA_PIXEL water bit (CFMask, Foga et al. 2017) on
  pixels that are clear, not snow and not fill. The label is itself spectral, so these
  cases check that land stays dry and that plain water is found, no more.
* `cases.json` naming simulated Sentinel-1 chips (`flood_simulated_s1`): generated from a
  seed at evaluation time and reported as ``kind="simulated"``.

Each row also carries a reliability table (water probability bins against the observed
water frequency, `flood_score.reliability`) and its expected calibration error, pooled over
rows by `reliability_table`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from geoproc.products.flood import score as flood_score
from geoproc.products.flood import simulated_s1
from geoproc.products.thresholds import otsu_threshold

IOU_TARGET = ">= 0.80"
FALSE_POSITIVE_TARGET = "<= 1.0 %"
MIN_LANDSAT_WATER_PIXELS = 20
"""A Landsat scene with fewer clear water pixels is no flood case (its label is spectral)."""
PROBABILITY_BINS = flood_score.PROBABILITY_BINS
_LANDSAT_BANDS = {
    # common name -> band number for TM/ETM+ (LT04/LT05/LE07) and OLI (LC08/LC09)
    "tm": {"blue": 1, "green": 2, "red": 3, "nir08": 4, "swir16": 5, "swir22": 7},
    "oli": {"blue": 2, "green": 3, "red": 4, "nir08": 5, "swir16": 6, "swir22": 7},
}
# Sentinel-2 L1C band order in Sen1Floods11 S2Hand chips (B1..B8, B8A, B9..B12).
_S2_ORDER = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
_S2_COMMON = {
    "blue": "B2",
    "green": "B3",
    "red": "B4",
    "nir08": "B8A",
    "swir16": "B11",
    "swir22": "B12",
}


def evaluate_real(folders: Sequence[Path]) -> list[dict]:
    """One row per flood case found in ``folders`` (folders without flood cases are skipped)."""
    rows: list[dict] = []
    seen: set[str] = set()
    for folder in map(Path, folders):
        for case, runner in _cases_in(folder):
            if case in seen:
                continue
            seen.add(case)
            rows.append(runner())
    return rows


def reliability_table(rows: Sequence[dict]) -> list[dict]:
    """Pooled reliability table: per probability bin, pixels, mean probability, water share."""
    return flood_score.pool_reliability([r["reliability"] for r in rows if r.get("reliability")])


def score_chip(
    case: str,
    kind: str,
    dataset: xr.Dataset,
    label: np.ndarray,
    *,
    notes: str = "",
    sar_units: str = "auto",
) -> dict:
    """Run flood on one labelled scene (defaults) and score it beside the baselines.

    ``label``: 1 water, 0 not water, anything else no data. Water-free scenes are scored by
    the share of valid land pixels called water ("false positive %").
    """
    from geoproc.products import flood

    out = flood.run(dataset)
    water = np.asarray(out["water"].values)
    prob = np.asarray(out["water_probability"].values, np.float64)
    valid = np.isin(label, (0, 1)) & (water != flood.WATER_NODATA)
    truth = label == 1
    pred = np.isin(water, (flood.WATER_REFERENCE, flood.WATER_FLOOD))
    baselines = _baselines(dataset, valid, sar_units=sar_units)
    water_free = not truth[valid].any()
    metric = "false positive %" if water_free else "water IoU"
    scores = {
        name: _false_positive_pct(b, truth, valid) if water_free else _iou(b, truth, valid)
        for name, b in baselines.items()
    }
    target = FALSE_POSITIVE_TARGET if water_free else IOU_TARGET
    if "MNDWI > 0.124" in scores and not water_free:
        # with optical data the bar is the best single index on the same pixels
        target = f">= {max(scores['MNDWI > 0.124'], 0.0):.3f} (MNDWI > 0.124)"
    table = flood_score.reliability(prob[valid] / 100.0, truth[valid])
    row = {
        "product": "flood",
        "case": case,
        "kind": kind,
        "metric": metric,
        "geoproc": _false_positive_pct(pred, truth, valid)
        if water_free
        else _iou(pred, truth, valid),
        "baselines": scores,
        "target": target,
        "n_pixels": int(valid.sum()),
        "notes": notes,
        "water_share": float(truth[valid].mean()) if valid.any() else float("nan"),
        "reliability": table,
        "calibration_error": flood_score.expected_calibration_error(table),
        **_uncertainty_where_wrong(
            np.asarray(out["uncertainty"].values)[valid], (pred != truth)[valid]
        ),
    }
    return row


def _cases_in(folder: Path) -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    manifest = folder / "cases.json"
    if manifest.is_file():
        names = json.loads(manifest.read_text()).get("simulated_s1", [])
        specs = {s.name: s for s in simulated_s1.CASES}
        for name in names:
            if name in specs:
                found.append((name, lambda s=specs[name]: _simulated(s)))
    if (folder / "S1Hand").is_dir() and (folder / "LabelHand").is_dir():
        for s1 in sorted((folder / "S1Hand").glob("*.tif")):
            chip = s1.name.replace("_S1Hand.tif", "")
            label = folder / "LabelHand" / s1.name.replace("S1Hand", "LabelHand")
            if label.is_file():
                found.append((f"sen1floods11-{chip}", lambda a=s1, b=label: _sen1floods11(a, b)))
    for qa in sorted([*folder.glob("*_QA_PIXEL.TIF"), *folder.glob("*/*_QA_PIXEL.TIF")]):
        scene = qa.name.replace("_QA_PIXEL.TIF", "")
        if _landsat_water_pixels(qa) >= MIN_LANDSAT_WATER_PIXELS:
            found.append((f"landsat-{scene}", lambda q=qa: _landsat(q)))
    return found


def _simulated(spec: simulated_s1.ChipSpec) -> dict:
    img, label = simulated_s1.simulate(spec)
    ds = xr.Dataset({pol: (("y", "x"), v) for pol, v in img.items()})
    return score_chip(
        spec.name,
        "simulated",
        ds,
        label,
        notes=f"physics-simulated S1 GRD chip, seed {spec.seed}, {spec.units}: {spec.notes}",
        sar_units=spec.units,
    )


def _sen1floods11(s1_path: Path, label_path: Path) -> dict:
    import rasterio

    with rasterio.open(s1_path) as src:
        s1 = src.read().astype(np.float32)
    with rasterio.open(label_path) as src:
        label = src.read(1)
    data = {"vv": (("y", "x"), s1[0]), "vh": (("y", "x"), s1[1])}
    s2_path = Path(str(s1_path).replace("S1Hand", "S2Hand"))
    if s2_path.is_file():
        with rasterio.open(s2_path) as src:
            s2 = src.read().astype(np.float32)
        for name, band in _S2_COMMON.items():
            data[name] = (("y", "x"), s2[_S2_ORDER.index(band)] * 1e-4)
    ds = xr.Dataset(data)
    chip = s1_path.name.replace("_S1Hand.tif", "")
    notes = "Sen1Floods11 hand label" + (" + S2 L1C" if s2_path.is_file() else ", S1 only")
    return score_chip(f"sen1floods11-{chip}", "real", ds, label, notes=notes, sar_units="db")


def _landsat_water_pixels(qa_path: Path) -> int:
    """Clear water pixels of a scene's QA_PIXEL (bit 7 set, no fill/cloud/shadow/snow)."""
    import rasterio

    with rasterio.open(qa_path) as src:
        qa = src.read(1).astype(np.int64)
    unusable = (qa & 0b111011) != 0  # fill, dilated cloud, cloud, shadow, snow (bits 0,1,3,4,5)
    return int((((qa >> 7) & 1).astype(bool) & ~unusable).sum())


def _landsat(qa_path: Path) -> dict:
    scene = qa_path.name.replace("_QA_PIXEL.TIF", "")
    dataset, label = load_landsat(qa_path)
    return score_chip(
        f"landsat-{scene}",
        "real",
        dataset,
        label,
        notes="real Landsat C2 L2 SR; label = QA_PIXEL water bit (CFMask, spectral) on clear pixels",
    )


def load_landsat(qa_path: Path) -> tuple[xr.Dataset, np.ndarray]:
    """A Landsat C2 L2 scene as flood input (SR in 0-1, common band names) and its label.

    Label: 1 where QA_PIXEL's water bit is set, 0 where not, -1 where the pixel is fill,
    cloud, dilated cloud, shadow or snow. The QA layer itself is not in the dataset, as a
    user with SR bands only would run it.
    """
    import rasterio

    scene = qa_path.name.replace("_QA_PIXEL.TIF", "")
    sensor = "oli" if re.match(r"L[CO]0[89]", scene) else "tm"
    with rasterio.open(qa_path) as src:
        qa = src.read(1).astype(np.int64)
    data = {}
    for name, number in _LANDSAT_BANDS[sensor].items():
        with rasterio.open(qa_path.parent / f"{scene}_SR_B{number}.TIF") as src:
            dn = src.read(1).astype(np.float32)
        # C2 L2 surface reflectance: DN x 2.75e-5 - 0.2, fill 0 (USGS Landsat C2 L2 guide)
        data[name] = (("y", "x"), np.where(dn == 0, np.nan, dn * 2.75e-5 - 0.2))
    bit = lambda k: ((qa >> k) & 1).astype(bool)  # noqa: E731
    unusable = bit(0) | bit(1) | bit(3) | bit(4) | bit(5)
    label = np.where(unusable, -1, bit(7).astype(np.int8))
    return xr.Dataset(data), label


def _baselines(ds: xr.Dataset, valid: np.ndarray, *, sar_units: str) -> dict[str, np.ndarray]:
    from geoproc.products.flood import sar as flood_sar

    out: dict[str, np.ndarray] = {}
    if "green" in ds and "swir16" in ds:
        g, s = ds["green"].values.astype(np.float64), ds["swir16"].values.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["MNDWI > 0.124"] = (g - s) / (g + s) > 0.124
    for pol in ("vh", "vv"):
        if pol in ds:
            db = flood_sar.to_db(ds[pol].values, units=sar_units)
            t = otsu_threshold(db[valid & np.isfinite(db)])
            with np.errstate(invalid="ignore"):
                out[f"Otsu on {pol.upper()}"] = db < t
    return out


def _iou(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    p, t = pred & valid, truth & valid
    union = int((p | t).sum())
    return float((p & t).sum() / union) if union else float("nan")


def _false_positive_pct(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    land = valid & ~truth
    return float(100.0 * (pred & land).sum() / land.sum()) if land.any() else float("nan")


def _uncertainty_where_wrong(entropy: np.ndarray, wrong: np.ndarray) -> dict:
    """Share of wrong pixels, and of all pixels, whose entropy is >= 0.5 bit (p in ~0.11-0.89).

    Uncertainty is useful when the first share is far above the second.
    """
    uncertain = np.nan_to_num(entropy) >= 0.5
    return {
        "uncertain_share_of_errors": float(uncertain[wrong].mean())
        if wrong.any()
        else float("nan"),
        "uncertain_share_of_pixels": float(uncertain.mean()) if uncertain.size else float("nan"),
    }
