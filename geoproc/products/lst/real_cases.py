"""Real-data scoring of LST: every Landsat C2 L2 scene in some folders, three atmosphere modes.

The reference is the USGS C2 surface temperature (ST_B6 for TM/ETM+, ST_B10 for TIRS; Cook et
al. 2014) on pixels QA_PIXEL calls clear (and not fill). Each scene is run as a user would,
through `geoproc.products.lst.run`, with the atmosphere it would have:

* ``per_pixel``: ST_ATRAN/URAD/DRAD as ``atmos_*_lwir11`` maps and ST_EMIS as
  ``emissivity_lwir11`` (the best a Landsat C2 L2 scene holds); target <= 0.3 K RMSE. The
  reference is built from the same emissivity, atmosphere and radiance, so the error is the
  retrieval's own (0.03-0.15 K) and the coverage of a sigma stated against the true LST is
  near 1 by construction: no calibration check (said in the row);
* ``scene_mean``: the scene mean of those layers (a per-scene reanalysis profile), NDVI-THM
  emissivity; target: 60-75 % of pixels with |error| <= the stated 1-sigma;
* ``none``: no atmosphere (what HLS gives): single-channel (Jimenez-Munoz et al. 2009, 2014)
  with the water vapour estimated from the scene's temperature (Reitan 1963); same target.

The uncertainty constants fitted on real scenes (in-scene atmosphere spread, NDVI-THM sigma per
class, the dew-point depression that sets the water vapour) are refitted for every scored
scene on the OTHER scenes found (leave-one-scene-out, `calibrate`), and the scene is run with
them: the row's RMSE and ``coverage_1sigma`` are held-out figures, never scored on the scene
that was fitted. With one scene only, the shipped constants are used (said in the row).

Baselines on the same pixels: a plain RTE inversion with NDVI emissivity (Sobrino et al.
2004) and with the USGS emissivity, each with the same atmosphere as the row and the band's
Planck law as the product has it (the TM offset included).

Scene mean against "USGS EMIS + same atmosphere": the product with ST_EMIS in place of
NDVI-THM matches that baseline (ETM+ 0.189 K), and the cloud screen and the uncertainty terms
do not change the LST: the gap is the emissivity. NDVI-THM puts closed canopy at 0.987 where
ST_EMIS has about 0.974 on the ETM+ scene (0.98 on the TM scene of the same place), i.e. one
offset per scene, which the held-out class sigma has to cover.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from geoproc.errors import NoDataError
from geoproc.products.lst import emissivity as emis
from geoproc.products.lst.landsat_c2 import find_scenes, load_landsat_c2_l2
from geoproc.products.lst.planck import (
    bt_from_radiance,
    constants_for_dataset,
    radiance_from_bt,
    thermal_band,
)
from geoproc.products.lst.rte import SceneAtmosphereVariability
from geoproc.products.lst.single_channel import single_channel_lst

MODES = ("per_pixel", "scene_mean", "none")
_LAND = (emis.SOIL, emis.MIXED, emis.VEGETATION)
TARGETS = {
    "per_pixel": "<= 0.3 K",
    "scene_mean": "coverage_1sigma 60-75 %",
    "none": "coverage_1sigma 60-75 %",
}


def evaluate_real(folders: Sequence[Path]) -> list[dict]:
    """One row per (Landsat C2 L2 scene, atmosphere mode) found in `folders`."""
    from geoproc.products import lst

    scenes = _scenes(folders)
    terms = _calibration_terms_of(scenes)
    rows = []
    for mtl in scenes:
        name = _name(mtl)
        held_out = [t for t in terms if t["scene"] != name]
        params = _held_out_params(lst, held_out)
        for mode in MODES:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                row = _row(lst, mtl, mode, params)
            row["calibration"] = (
                f"leave-one-scene-out: uncertainty constants fitted on {len(held_out)} other "
                "scene(s)"
                if held_out
                else "shipped constants (no other scene to fit on)"
            )
            rows.append(row)
    if len(scenes) > 1:
        rows.extend(_pooled_rows(rows))
    return rows


def _pooled_rows(rows: list[dict]) -> list[dict]:
    """Per coverage mode, the held-out coverage averaged over scenes (each scene one vote).

    Why: the scene-mean and no-atmosphere errors are mostly scene-wide (weather, a regional
    emissivity offset), so one scene's coverage is near 0 or 1 whatever sigma is stated; even
    a perfectly calibrated sigma puts only about 13-24 % of scenes inside 60-75 % when the
    in-scene spread is half to 0.7 of sigma (normal bias and spread, simulated). The average
    over scenes is what a calibrated sigma brings to 68 %; over four scenes it still scatters
    by 0.09-0.14 (one sigma, same simulation): 0.84 arises for a calibrated sigma in about
    one draw in seven when the in-scene spread is half of it.
    """
    out = []
    for mode in ("scene_mean", "none"):
        label = f"{mode.replace('_', '-')} atmosphere"
        part = [r for r in rows if r["case"].endswith(label) and r["n_pixels"]]
        if len(part) < 2:
            continue
        out.append(
            {
                "product": "lst",
                "case": f"all {len(part)} Landsat scenes, {label} (mean over scenes)",
                "kind": "real",
                "metric": "RMSE K",
                "geoproc": round(float(np.sqrt(np.mean([r["geoproc"] ** 2 for r in part]))), 3),
                "baselines": {},
                "target": TARGETS[mode],
                "coverage_1sigma": round(float(np.mean([r["coverage_1sigma"] for r in part])), 3),
                "bias": round(float(np.mean([r["bias"] for r in part])), 3),
                "n_pixels": int(sum(r["n_pixels"] for r in part)),
                "notes": "held-out coverage and RMS of the scenes' RMSE, each scene weighted "
                "equally; per-scene coverage is near 0 or 1 when the error is scene-wide",
                "calibration": "leave-one-scene-out (each scene's own row)",
            }
        )
    return out


def _name(mtl: Path) -> str:
    return mtl.name.rsplit("_MTL", 1)[0]


def _held_out_params(lst, terms: list[dict]):
    """`LSTParams` with the constants fitted on `terms` (the shipped defaults when empty)."""
    if not terms:
        return lst.LSTParams()
    fit = _fit(terms)
    return lst.LSTParams(
        scene_variability=SceneAtmosphereVariability(fit["correction_relative"]),
        emissivity_class_sigma=tuple(sorted(fit["class_sigma"].items())),
        dewpoint_depression_k=fit["dewpoint_depression_k"],
    )


def _scenes(folders: Sequence[Path]) -> list[Path]:
    """Each scene once, however many of `folders` (a root and its subfolders) hold it."""
    found: dict[str, Path] = {}
    for folder in folders:
        if Path(folder).is_dir():
            for mtl in find_scenes(folder):
                found.setdefault(mtl.name.rsplit("_MTL", 1)[0], mtl)
    return [found[k] for k in sorted(found)]


def _row(lst, mtl: Path, mode: str, params=None) -> dict:
    ds = load_landsat_c2_l2(mtl, atmosphere=mode, usgs_emissivity=mode == "per_pixel")
    out = lst.run(ds, params=params)
    ref = ds["st_lst"].values
    pred = out["lst"].values
    clear = ds["qa_clear"].values & np.isfinite(ref) & np.isfinite(pred)
    err = (pred - ref)[clear]
    sigma = out["lst_uncertainty"].values[clear]
    baselines = _baselines(ds, mtl, mode, ref, clear)
    n = int(clear.sum())
    rmse = float(np.sqrt(np.mean(err**2))) if n else float("nan")
    return {
        "product": "lst",
        "case": f"{ds.attrs['source']} {mode.replace('_', '-')} atmosphere",
        "kind": "real",
        "metric": "RMSE K",
        "geoproc": round(rmse, 3),
        "baselines": baselines,
        "target": TARGETS[mode],
        "coverage_1sigma": round(float(np.mean(np.abs(err) <= sigma)), 3) if n else float("nan"),
        "bias": round(float(np.mean(err)), 3) if n else float("nan"),
        "n_pixels": n,
        "notes": (
            f"{ds.attrs['spacecraft']}; reference USGS C2 ST on QA_PIXEL-clear pixels; "
            f"median stated sigma {float(np.median(sigma)) if n else float('nan'):.2f} K"
            + (_PER_PIXEL_NOTE if mode == "per_pixel" else "")
        ),
    }


_PER_PIXEL_NOTE = (
    "; the reference shares this emissivity, atmosphere and radiance, so the error is the "
    "retrieval's own (band Planck law): the stated sigma (emissivity 0.01, sensor NEdT) is "
    "against the true LST and its coverage here is no calibration check"
)


def _baselines(ds, mtl: Path, mode: str, ref, clear) -> dict:
    """Plain RTE with NDVI emissivity and with USGS EMIS, same atmosphere as the row."""
    if mode == "none":
        atm = load_landsat_c2_l2(mtl, atmosphere="scene_mean")
        label = " (scene-mean atmosphere)"
    else:
        atm, label = ds, ""
    band = thermal_band("lwir11", constants=constants_for_dataset(ds.attrs))
    tau = atm["atmos_transmittance_lwir11"]
    lu = atm["atmos_upwelling_lwir11"]
    ld = atm["atmos_downwelling_lwir11"]
    ndvi = (ds["nir08"] - ds["red"]) / (ds["nir08"] + ds["red"])
    fvc = ((ndvi - 0.2) / 0.3).clip(0, 1) ** 2
    plain_eps = 0.97 * (1 - fvc) + 0.99 * fvc  # Sobrino et al. (2004) soil/vegetation mix
    out = {}
    for name, eps in (
        (f"plain RTE + NDVI emissivity{label}", plain_eps),
        (f"USGS EMIS + same atmosphere{label}", ds["st_emis"]),
    ):
        sensor = radiance_from_bt(ds["lwir11"], band)
        leaving = ((sensor - lu) / tau - (1 - eps) * ld) / eps
        # the band's Planck offset (TM: 0.40 K, `planck`) as the product applies it
        pred = np.asarray(bt_from_radiance(leaving, band) - band.lst_offset_k).reshape(ref.shape)
        use = clear & np.isfinite(pred)
        diff = (pred - ref)[use]
        out[name] = round(float(np.sqrt(np.mean(diff**2))), 3) if use.any() else float("nan")
    return out


def calibrate(folders: Sequence[Path], *, leave_out: str | None = None) -> dict:
    """Uncertainty constants fitted on the real scenes in `folders` (all but `leave_out`).

    * ``correction_relative`` (`SceneAtmosphereVariability`): per scene, the RMS LST change
      from replacing the per-pixel USGS atmosphere by its scene mean over the RMS atmospheric
      correction; the RMS over scenes (each scene's weather is one draw of a scene-level
      error, and a one-sigma is the RMS of such draws: a median of the ratios understates it
      whenever one scene has a much larger spread, as the TM scene has);
    * ``class_sigma``: per emissivity class, the RMS of NDVI-THM minus USGS ST_EMIS, each
      scene weighted equally. The NDVI-THM error is mostly one offset per scene (the fixed
      soil and canopy end members against the scene's real surfaces), so a class seen in
      fewer than two scenes is one draw, not a spread: a land class (soil, mixed,
      vegetation) then takes the pooled land RMS, water and snow/ice keep the shipped
      library sigma (`emissivity.CLASS_UNCERTAINTY`). Without this the ETM+ scene, held out,
      got the vegetation sigma of the TM scene alone (0.006, against its own 0.016);
    * ``dewpoint_depression_k``: the depression (whole kelvin, 0-40 K) whose water vapour
      (`single_channel.climatological_water_vapour`) gives the single-channel LST the lowest
      mean over scenes of the RMSE against the USGS ST.
    """
    terms = [t for t in _calibration_terms(folders) if t["scene"] != leave_out]
    if not terms:
        raise NoDataError("No Landsat C2 L2 scene left to calibrate on; add scene folders.")
    return _fit(terms)


def _fit(terms: list[dict]) -> dict:
    ratios = [np.sqrt(np.mean(t["e_atm"] ** 2) / np.mean(t["correction"] ** 2)) for t in terms]
    correction = np.sqrt(np.mean(np.square(ratios)))
    class_sigma = {}
    land = [
        t["d_eps"][np.isin(t["cls"], _LAND)] for t in terms if np.isin(t["cls"], _LAND).sum() >= 5
    ]
    pooled_land = float(np.sqrt(np.mean([np.mean(p**2) for p in land]))) if land else None
    for code, name in emis.SURFACE_CLASSES.items():
        parts = [t["d_eps"][t["cls"] == code] for t in terms]
        parts = [p for p in parts if p.size >= 5]
        if len(parts) >= 2:
            class_sigma[name] = float(np.sqrt(np.mean([np.mean(p**2) for p in parts])))
        elif code in _LAND and pooled_land is not None:
            class_sigma[name] = pooled_land
        # else: a water or snow class seen in one scene keeps its shipped (library) sigma
    return {
        "correction_relative": float(correction),
        "class_sigma": class_sigma,
        "dewpoint_depression_k": _fit_depression(terms),
        "scenes": len(terms),
    }


def _fit_depression(terms: list[dict]) -> float:
    from geoproc.products.lst.single_channel import climatological_water_vapour

    def cost(depression: float) -> float:
        rmse = []
        for t in terms:
            w, _ = climatological_water_vapour(t["bt"], depression)
            lst = single_channel_lst(t["bt"], t["eps"], w, band=t["band"])
            rmse.append(np.sqrt(np.mean((lst - t["ref"]) ** 2)))
        return float(np.mean(rmse))

    grid = np.arange(0.0, 41.0, 1.0)
    return float(grid[int(np.argmin([cost(d) for d in grid]))])


def leave_one_out(folders: Sequence[Path]) -> list[dict]:
    """Scene-mean coverage of each scene with the correction spread fitted on the other scenes."""
    from geoproc.products import lst

    scenes = _scenes(folders)
    terms = _calibration_terms_of(scenes)
    rows = []
    for mtl in scenes:
        name = _name(mtl)
        held_out = [t for t in terms if t["scene"] != name]
        if not held_out:
            raise NoDataError("No Landsat C2 L2 scene left to calibrate on; add scene folders.")
        params = _held_out_params(lst, held_out)
        ds = load_landsat_c2_l2(mtl, atmosphere="scene_mean")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = lst.run(ds, params=params)
        ref = ds["st_lst"].values
        clear = ds["qa_clear"].values & np.isfinite(ref) & np.isfinite(out["lst"].values)
        err = (out["lst"].values - ref)[clear]
        sigma = out["lst_uncertainty"].values[clear]
        rows.append(
            {
                "scene": name,
                "correction_relative": round(params.scene_variability.correction_relative, 3),
                "coverage_1sigma": round(float(np.mean(np.abs(err) <= sigma)), 3),
            }
        )
    return rows


def _calibration_terms(folders: Sequence[Path]) -> list[dict]:
    return _calibration_terms_of(_scenes(folders))


def _calibration_terms_of(scenes: Sequence[Path]) -> list[dict]:
    from geoproc.products import lst

    out = []
    for mtl in scenes:
        pp = load_landsat_c2_l2(mtl, atmosphere="per_pixel", usgs_emissivity=True)
        sm = load_landsat_c2_l2(mtl, atmosphere="scene_mean", usgs_emissivity=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            own = lst.run(pp.drop_vars("emissivity_lwir11"), cloud_screen=False)
            mean_atm = lst.run(sm, cloud_screen=False)["lst"].values[0]
            pixel_atm = lst.run(pp, cloud_screen=False)["lst"].values[0]
            band = thermal_band("lwir11", constants=constants_for_dataset(pp.attrs))
            emis_usgs = pp["emissivity_lwir11"].values[0]
            bare = bt_from_radiance(
                radiance_from_bt(pp["lwir11"].values[0], band) / emis_usgs, band
            )
        ref = pp["st_lst"].values[0]
        eps = own["emissivity"].values[0]
        clear = pp["qa_clear"].values[0] & np.isfinite(ref + mean_atm + pixel_atm + eps + bare)
        cls = ((own["lst_qa"].values[0] >> lst.QA_CLASS_SHIFT) & 7).astype(int) - 1
        out.append(
            {
                "scene": mtl.name.rsplit("_MTL", 1)[0],
                "e_atm": (mean_atm - pixel_atm)[clear],
                "correction": (mean_atm + band.lst_offset_k - bare)[clear],
                "d_eps": (eps - pp["st_emis"].values[0])[clear],
                "cls": cls[clear],
                "bt": pp["lwir11"].values[0][clear],
                "eps": eps[clear],
                "ref": ref[clear],
                "band": band,
            }
        )
    return out
