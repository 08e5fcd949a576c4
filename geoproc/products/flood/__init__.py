"""Flood extent per acquisition date from HLS optical tests and Sentinel-1 split thresholding.

Method: optical water from the five DSWE / OPERA DSWx-HLS diagnostic tests masked by
Fmask (Jones 2019, Remote Sensing 11:374; OPERA DSWx-HLS ATBD, `flood_dswx`); SAR water
from hierarchical split-based thresholding of gamma0 in dB with a bimodality test
(Chini et al. 2017, IEEE TGRS 55:6975; Martinis et al. 2015, `flood_sar`; without a
bimodal tile a global Kittler-Illingworth split or the physical dark mode, VV and VH both
fitted and, on a single date, the more plausibly dark one deciding), with a
per-pixel prior from the optical water history in Bayes' rule so thin rivers and known
lakes are not lost to a scene-wide threshold (Giustarini et al. 2016, `flood_prior`);
change detection against each pixel's own reference backscatter, the temporal median of
the cube's Sentinel-1 dates: dark pixels that did not darken are not new water (Schlaffer
et al. 2015, `flood_change`), and flooded forest and towns, which brighten by double
bounce, are found where they rise and touch the same date's open flood water (Pulvirenti
et al. 2011; Chini et al. 2019, `flood_double_bounce`); a weighted opinion pool where
both see a pixel (`flood_fusion`); flood = water now that is not water in a reference
(occurrence over the cube's own history after Pekel et al. 2016, or a layer the user
gives; `flood_reference`). A new cube date is appended to the store without reclassifying
the published dates, as operational services do (GFM, Salamon et al. 2021; OPERA DSWx):
it is classified against the reference over every date up to it, and a reference drift
beyond ``reference_drift_limit`` recomputes every date (`flood_incremental`; spatially blocked configurations only). A
small MC-dropout U-Net trained on Sen1Floods11-style chips (Bonafilia et al. 2020) is the learned alternative
(`algorithm="unet"`, `flood_unet`). Masked input is no data out, never a guess.
Every option is a field of `FloodParams` (`flood_params`), written to the output attributes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import xarray as xr

from geoproc.errors import UsageError
from geoproc.products.base import ProductSpec, VariableSpec, apply_output_attrs
from geoproc.products.flood import change as flood_change
from geoproc.products.flood import double_bounce as flood_double_bounce
from geoproc.products.flood import dswx as flood_dswx
from geoproc.products.flood import fusion as flood_fusion
from geoproc.products.flood import incremental as flood_incremental
from geoproc.products.flood import prior as flood_prior
from geoproc.products.flood import reference as flood_reference
from geoproc.products.flood import sar as flood_sar
from geoproc.products.flood.params import FloodParams
from geoproc.products.thresholds import GaussianPair, refit_to_scene

append_block = flood_incremental.append_block
append_verdict = flood_incremental.append_verdict
"""The store-append hooks of the product stage (`flood_incremental`: the policy)."""
detect_dates = flood_incremental.detect_dates
history_counts = flood_incremental.history_counts
classify_history = flood_incremental.classify_history
"""The two passes of the product stage's full blocked run (`flood_incremental`)."""

WATER_NOT, WATER_REFERENCE, WATER_FLOOD, WATER_NODATA = 0, 1, 2, 255
DIAG_NODATA = 65535

# diagnostic bits: 0-4 DSWx tests 1-5; the rest below.
BIT_VV_DARK = 5
BIT_VH_DARK = 6
BIT_SAR_NO_SPLIT = 7
BIT_REFERENCE_WATER = 8
BIT_REFERENCE_UNKNOWN = 9
BIT_SAR_SERIES_FIT = 10
BIT_OPTICAL_SNOW_GUARD = 11
BIT_SAR_DOUBLE_BOUNCE = 12
BIT_SAR_UNCHANGED_DARK = 13
BIT_OPTICAL_CLOUD_GUARD = 14
BIT_OPTICAL_NIR_VETO = 15
_QA_VARIABLES = ("fmask", "Fmask", "scl", "SCL")
_DIAG_MEANINGS = (
    "dswx_mndwi",
    "dswx_mbsrv_gt_mbsrn",
    "dswx_awesh",
    "dswx_partial_surface_water_1",
    "dswx_partial_surface_water_2",
    "sar_vv_below_threshold",
    "sar_vh_below_threshold",
    "sar_scene_not_bimodal",
    "reference_water",
    "reference_unknown",
    "sar_fit_borrowed_from_series",
    "optical_snow_like_masked",
    "sar_double_bounce_rise",
    "sar_dark_but_not_darker_than_reference",
    "optical_cloud_like_masked_without_qa",
    "optical_open_water_nir_not_below_green",
)

SPEC = ProductSpec(
    name="flood",
    version="1.3.0",
    method=(
        "DSWx-HLS diagnostic tests (Jones 2019; OPERA DSWx-HLS ATBD) + Sentinel-1 hierarchical "
        "split-based thresholding with bimodality test (Chini et al. 2017; Martinis et al. 2015) "
        "and a per-pixel occurrence prior (Giustarini et al. 2016), change detection against the "
        "per-pixel reference backscatter (Schlaffer et al. 2015) incl. double bounce in flooded "
        "forest and towns (Pulvirenti et al. 2011; Chini et al. 2019), opinion-pool fusion, "
        "flood = water not in the occurrence reference (Pekel et al. 2016)"
    ),
    required_inputs=(),
    optional_inputs=(*flood_dswx.OPTICAL_BANDS, "fmask", "vv", "vh"),
    temporal="scene",
    halo=1,
    outputs=(
        VariableSpec(
            "water",
            "uint8",
            "1",
            "surface water class",
            fill_value=WATER_NODATA,
            flag_values=(WATER_NOT, WATER_REFERENCE, WATER_FLOOD),
            flag_meanings=("not_water", "reference_water", "flood_water"),
        ),
        VariableSpec(
            "water_probability",
            "uint8",
            "percent",
            "probability of surface water",
            fill_value=255,
            valid_range=(0, 100),
        ),
        VariableSpec(
            "uncertainty",
            "float32",
            "bit",
            "predictive entropy of the water probability",
            fill_value=float("nan"),
            valid_range=(0.0, 1.0),
        ),
        VariableSpec(
            "diagnostic",
            "uint16",
            "1",
            "tests that fired (bit k set = test k passed)",
            fill_value=DIAG_NODATA,
            flag_masks=tuple(1 << k for k in range(len(_DIAG_MEANINGS))),
            flag_meanings=_DIAG_MEANINGS,
        ),
        VariableSpec(
            "water_source",
            "uint8",
            "1",
            "sensors that decided (0 none)",
            flag_masks=(
                flood_fusion.SOURCE_OPTICAL,
                flood_fusion.SOURCE_SAR,
                flood_fusion.SOURCE_MODEL,
            ),
            flag_meanings=("optical", "sar", "model"),
        ),
    ),
)


def run(
    dataset: xr.Dataset,
    *,
    params: FloodParams | None = None,
    reference: xr.DataArray | np.ndarray | None = None,
    **options: Any,
) -> xr.Dataset:
    """Flood product for every time step of ``dataset`` (see the module docstring).

    ``params``: a `FloodParams`; keyword ``options`` (its field names, e.g.
    ``sar_units="db"``, ``double_bounce=False``) override it, so ``run(ds, **options)``
    works as before. ``reference``: a (y, x) layer of permanent water on the same grid
    (1 water, 0 dry, NaN unknown); without it the reference is the water occurrence over
    the cube's own time steps (or over ``reference_time = (start, end)``).
    ``algorithm="unet"`` needs ``model``, the path of a card written by `flood_train.train`.
    """
    p = FloodParams.from_options(params, **options)
    if not isinstance(dataset, xr.Dataset):
        raise UsageError(f"flood.run needs an xarray.Dataset, got {type(dataset).__name__}")
    algorithm, reference_time = p.algorithm, p.reference_time
    sar_units, speckle_window = p.sar_units, p.speckle_window
    single = "time" not in dataset.dims
    ds = dataset.expand_dims("time") if single else dataset
    has_optical = all(b in ds for b in flood_dswx.OPTICAL_BANDS)
    has_sar = "vv" in ds or "vh" in ds
    if not (has_optical or has_sar):
        missing = [b for b in flood_dswx.OPTICAL_BANDS if b not in ds]
        raise UsageError(
            "flood needs the optical bands blue, green, red, nir08, swir16, swir22 (missing "
            f"{', '.join(missing)}) or Sentinel-1 vv/vh; the dataset has {', '.join(map(str, ds.data_vars))}. "
            "Add an HLS or Sentinel-1 RTC collection to the request."
        )
    ds = ds.transpose("time", "y", "x", ...)
    nt, ny, nx = ds.sizes["time"], ds.sizes["y"], ds.sizes["x"]
    refl_scale = _reflectance_scale(ds) if has_optical else 1.0
    opts = p.split_options
    bounce_options = p.double_bounce or flood_double_bounce.DoubleBounceOptions()

    prob = np.full((nt, ny, nx), np.nan, np.float32)
    unc = np.full((nt, ny, nx), np.nan, np.float32)
    diag = np.zeros((nt, ny, nx), np.uint16)
    source = np.zeros((nt, ny, nx), np.uint8)
    thresholds = {p: np.full(nt, np.nan, np.float32) for p in ("vv", "vh")}
    unet = None
    if algorithm == "unet":
        from geoproc.products.flood import unet as flood_unet

        if p.model is None:
            raise UsageError(
                "algorithm='unet' needs model=PATH of a flood model card (see flood_train.train)"
            )
        unet = flood_unet.load(p.model, device=p.device)

    plan = (
        _plan_sar(
            ds,
            units=sar_units,
            window=speckle_window,
            options=opts,
            share=p.sar_share_fit,
            max_shift_db=p.sar_max_shift_db,
        )
        if has_sar and unet is None
        else None
    )
    optical: list[np.ndarray | None] = [None] * nt
    if has_optical:
        for t in range(nt):
            optical[t], d_opt = _optical(
                ds.isel(time=t), scale=refl_scale, masked_bits=p.fmask_masked_bits
            )
            diag[t] |= d_opt
    if plan is not None and "vv" in plan.db:
        plan.reference_db = flood_change.reference_backscatter(
            plan.db["vv"][_time_selection(ds, reference_time)],
            min_dates=bounce_options.min_reference_dates,
        )
        if not np.isfinite(plan.reference_db).any():
            plan.reference_db = None
    prior = (
        _history_prior(
            optical, reference, shape=(ny, nx), min_observations=p.reference_min_observations
        )
        if p.sar_history_prior and plan is not None
        else None
    )
    for t in range(nt):
        step = ds.isel(time=t)
        p_opt, p_sar = optical[t], None
        if plan is not None:
            p_sar, d_sar, thr, split = _sar(
                step,
                t,
                plan,
                units=sar_units,
                window=speckle_window,
                prior=prior,
                single_date=nt == 1,
                min_water_pixels=opts.min_water_pixels,
            )
            if (
                p_sar is not None
                and plan.reference_db is not None
                and p.sar_min_drop_db is not None
            ):
                p_sar, unchanged = _change_check(
                    p_sar, plan, t, prior, min_drop_db=p.sar_min_drop_db
                )
                diag[t] |= (unchanged * (1 << BIT_SAR_UNCHANGED_DARK)).astype(np.uint16)
            if p_sar is not None and plan.reference_db is not None and p.double_bounce is not None:
                p_sar, bounce = _double_bounce(p_sar, plan, t, options=bounce_options)
                diag[t] |= (bounce * (1 << BIT_SAR_DOUBLE_BOUNCE)).astype(np.uint16)
            diag[t] |= d_sar
            for pol, v in thr.items():
                thresholds[pol][t] = v
            if not split and p_sar is not None and p_opt is not None:
                # SAR found no water class: it abstains where optical sees, decides elsewhere.
                p_sar = np.where(np.isfinite(p_opt), np.nan, p_sar).astype(np.float32)
        if unet is not None:
            p_model, u, src = unet.predict_step(
                step, reflectance_scale=refl_scale, sar_units=sar_units, samples=p.mc_samples
            )
            prob[t], unc[t], source[t] = p_model, u, src
            continue
        if p_opt is None and p_sar is None:
            continue  # nothing valid on this date: no data, never a guess
        prob[t], source[t] = flood_fusion.fuse(p_opt, p_sar, optical_weight=p.optical_weight)
        unc[t] = flood_fusion.binary_entropy(prob[t])

    valid = np.isfinite(prob)
    water_now = np.where(valid, (prob >= 0.5).astype(np.float32), np.nan)
    ref = _reference(
        water_now,
        source,
        ds,
        reference,
        reference_time,
        min_frequency=p.reference_min_frequency,
        min_observations=p.reference_min_observations,
    )
    water, diag = classify(water_now, diag, ref)
    source[~valid] = 0
    pct = np.where(valid, np.rint(np.nan_to_num(prob) * 100), 255).astype(np.uint8)

    dims = ("time", "y", "x")
    coords = {k: v for k, v in ds.coords.items() if set(v.dims) <= set(dims)}
    out = xr.Dataset(
        {
            "water": (dims, water),
            "water_probability": (dims, pct),
            "uncertainty": (dims, np.where(valid, unc, np.nan).astype(np.float32)),
            "diagnostic": (dims, diag),
            "water_source": (dims, source),
        },
        coords=coords,
    )
    for pol, v in thresholds.items():
        if np.isfinite(v).any():
            out.coords[f"sar_threshold_{pol}_db"] = ("time", v)
    if "spatial_ref" in ds.coords:
        for name in SPEC.outputs:
            out[name.name].attrs["grid_mapping"] = "spatial_ref"
    params = {
        **p.as_dict(),
        "reference": "user layer" if reference is not None else "history",
        "reflectance_scale": refl_scale,
    }
    out = apply_output_attrs(out, SPEC, params)
    out["water"].attrs["flag_values"] = np.array((0, 1, 2), np.uint8)
    return out.isel(time=0) if single else out


def classify(
    water_now: np.ndarray, diag: np.ndarray, ref: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The `water` classes and the diagnostic with the reference bits, from each date's
    water (1/0/NaN), its detection bits and a (y, x) reference (1 water, 0 dry, NaN unknown).

    The one place classes are decided, so that a date appended to a store
    (`flood_incremental`) gets exactly the classes a full run gives it."""
    valid = np.isfinite(water_now)
    ref_known = np.isfinite(ref)
    is_water = valid & (water_now == 1)
    water = np.full(water_now.shape, WATER_NODATA, np.uint8)
    water[valid] = WATER_NOT
    water[is_water & ref_known & (ref == 1)] = WATER_REFERENCE
    # Unknown reference: the water is reported as flood and flagged, never silently dropped.
    water[is_water & ~(ref_known & (ref == 1))] = WATER_FLOOD
    # The reference bits per pixel, broadcast over the dates by `|`: no (time, y, x)
    # temporaries beyond the result (the product stage's pass 2 classifies long series).
    ref_bits = np.where(ref_known & (ref == 1), np.uint16(1 << BIT_REFERENCE_WATER), 0) | (
        np.where(ref_known, 0, np.uint16(1 << BIT_REFERENCE_UNKNOWN))
    )
    diag = np.asarray(diag, np.uint16) | ref_bits.astype(np.uint16)
    diag[~valid] = DIAG_NODATA
    return water, diag


def _optical(
    step: xr.Dataset, *, scale: float, masked_bits: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    bands = [np.asarray(step[b].values, np.float32) * scale for b in flood_dswx.OPTICAL_BANDS]
    blue, green, red, nir, swir1, swir2 = bands
    valid = np.logical_and.reduce([np.isfinite(b) for b in bands])
    qa = "fmask" if "fmask" in step else "Fmask" if "Fmask" in step else None
    if qa is not None:
        valid &= flood_dswx.fmask_clear(np.asarray(step[qa].values), masked_bits=masked_bits)
    cloud = np.zeros(valid.shape, bool)
    if not any(name in step for name in _QA_VARIABLES):
        # No QA layer at all (e.g. S2 L1C chips): screen clouds here, so that the optical
        # tests abstain and SAR (when present) decides under them.
        cloud = valid & flood_dswx.cloud_like(*bands)
        valid &= ~cloud
    snow = valid & flood_dswx.snow_like(green, nir, swir1)
    valid &= ~snow
    d = flood_dswx.diagnostic_tests(*bands)
    p = np.where(valid, flood_dswx.water_probability(d, green=green, nir=nir), np.nan).astype(
        np.float32
    )
    vetoed = valid & flood_dswx.open_water_vetoed(flood_dswx.interpret(d), green, nir)
    diag = (
        np.where(valid, d, 0).astype(np.uint16)
        | (snow * (1 << BIT_OPTICAL_SNOW_GUARD)).astype(np.uint16)
        | (cloud * (1 << BIT_OPTICAL_CLOUD_GUARD)).astype(np.uint16)
        | (vetoed * (1 << BIT_OPTICAL_NIR_VETO)).astype(np.uint16)
    )
    return p, diag


@dataclass
class _SarPlan:
    """Per-date water/land fits per polarisation, decided before any pixel is classified."""

    fits: dict[str, list[GaussianPair | None]] = field(default_factory=dict)
    db: dict[str, np.ndarray] = field(default_factory=dict)
    """Speckle-filtered backscatter (dB) per polarisation, (time, y, x)."""
    reference_db: np.ndarray | None = None
    """Per-pixel reference VV backscatter (temporal median), None without enough dates."""
    borrowed: dict[str, list[bool]] = field(default_factory=dict)


SERIES_WATER_MAX_DB = -18.0
"""Open-water bound (dB) for a date's own split inside a series (see `_plan_sar`)."""


def _plan_sar(
    ds: xr.Dataset,
    *,
    units: str,
    window: int,
    options: flood_sar.SplitOptions,
    share: bool,
    max_shift_db: float,
) -> _SarPlan:
    """Fit each date; dates without a bimodal histogram may borrow the series' fit.

    Borrowing follows the idea that one relative orbit sees water and land alike from date to
    date (Martinis et al. 2015 reuse thresholds over time series): a date whose own split
    fails (little water in view) uses the median fit of the dates that had one, but not
    when its scene median is more than ``max_shift_db`` *darker* than the series' median, so
    dates whose whole landscape darkened (wet snow, frozen or flooded-everywhere scenes)
    never borrow. A brighter scene (wet soil, biomass) only widens the water/land gap and
    borrows: the fit's land class is re-estimated on the scene (`refit_to_scene`).
    """
    plan = _SarPlan()
    nt = ds.sizes["time"]
    # A date whose whole scene is more than `max_shift_db` darker than the series' median
    # (wet snow, frozen ground) neither borrows the series' fit (below) nor gets the
    # single-date water bound on its own split: its dark mode must be clearly open water
    # (VV below -18 dB, the calm-water range of Martinis et al. 2015). With the -17 dB
    # single-date bound, a wet-snow date of the sample archive (scene 4 dB darker, dark mode
    # at -17.3 dB) was 34 % "flooded" (flood IoU over all dates 0.94 -> 0.87).
    darkened = replace(options, water_max_db=min(options.water_max_db, SERIES_WATER_MAX_DB))
    for pol in ("vv", "vh"):
        if pol not in ds:
            continue
        stack = np.stack(
            [_db(ds[pol].isel(time=t).values, units=units, window=window) for t in range(nt)]
        )
        plan.db[pol] = stack
        medians = np.array(
            [float(np.nanmedian(s)) if np.isfinite(s).any() else np.nan for s in stack]
        )
        centre = float(np.nanmedian(medians)) if np.isfinite(medians).any() else np.nan
        fits: list[GaussianPair | None] = []
        for t in range(nt):
            if not np.isfinite(medians[t]):
                fits.append(None)
                continue
            dark = nt > 1 and medians[t] - centre < -max_shift_db
            opts = darkened if dark else options
            fits.append(flood_sar.split_based_fit(stack[t], options=opts, pol=pol).fit)
        borrowed = [False] * nt
        own = [f for f in fits if f is not None]
        if share and own and np.isfinite(medians).any():
            series = GaussianPair(
                mean=tuple(float(np.median([f.mean[k] for f in own])) for k in (0, 1)),
                std=tuple(float(np.median([f.std[k] for f in own])) for k in (0, 1)),
                weight=tuple(float(np.median([f.weight[k] for f in own])) for k in (0, 1)),
            )
            for t in range(nt):
                if (
                    fits[t] is None
                    and np.isfinite(medians[t])
                    and medians[t] - centre >= -max_shift_db
                ):
                    fits[t], borrowed[t] = series, True
        plan.fits[pol], plan.borrowed[pol] = fits, borrowed
    return plan


def _history_prior(
    optical: list[np.ndarray | None],
    reference: xr.DataArray | np.ndarray | None,
    *,
    shape: tuple[int, int],
    min_observations: int,
) -> np.ndarray | None:
    """Per-pixel water prior from the optical decisions of every date and the user's
    reference layer (its water at `flood_prior.MAX_PRIOR`), NaN where neither knows."""
    stack = [
        np.where(np.isfinite(p), (p >= 0.5).astype(np.float32), np.nan)
        for p in optical
        if p is not None
    ]
    prior = (
        flood_prior.occurrence_prior(np.stack(stack), min_observations=min_observations)
        if stack
        else np.full(shape, np.nan, np.float32)
    )
    if reference is not None:
        layer = flood_reference.reference_from_layer(reference, shape=shape)
        prior = np.fmax(prior, np.where(layer == 1, flood_prior.MAX_PRIOR, np.nan))
    return prior.astype(np.float32) if np.isfinite(prior).any() else None


def _sar(
    step: xr.Dataset,
    t: int,
    plan: _SarPlan,
    *,
    units: str,
    window: int,
    prior: np.ndarray | None = None,
    single_date: bool = False,
    min_water_pixels: int = 0,
) -> tuple[np.ndarray | None, np.ndarray, dict[str, float], bool]:
    """SAR water probability of one date, its diagnostic bits, thresholds, and whether it split."""
    probs, thresholds = [], {}
    shape = (step.sizes["y"], step.sizes["x"])
    diag = np.zeros(shape, np.uint16)
    any_valid = np.zeros(shape, bool)
    # One date alone: the polarisation whose water mode lies furthest below its physical
    # bound decides, VH where wind roughens the water in VV (`flood_sar.best_polarisation`).
    # In a series VV decides, as the change and double-bounce tests and the series fits
    # borrowed between dates are VV's; VH decides where VV is not delivered.
    voting = "vv" if "vv" in plan.fits else "vh"
    if single_date:
        voting = (
            flood_sar.best_polarisation(
                {
                    pol: flood_sar.SplitResult(fit=plan.fits[pol][t])
                    for pol in plan.fits
                    if np.isfinite(plan.db[pol][t]).any()
                }
            )
            or voting
        )
    for pol, bit in (("vv", BIT_VV_DARK), ("vh", BIT_VH_DARK)):
        if pol not in plan.fits:
            continue
        db = plan.db[pol][t]
        ok = np.isfinite(db)
        any_valid |= ok
        fit = plan.fits[pol][t]
        if fit is None or not ok.any():
            continue
        if plan.borrowed[pol][t]:
            fit = refit_to_scene(fit, db)
        split = flood_sar.SplitResult(fit=fit)
        thresholds[pol] = split.threshold_db
        diag |= ((ok & (db < split.threshold_db)) * (1 << bit)).astype(np.uint16)
        if pol != voting:
            continue
        probs.append(
            flood_sar.cap_above_bound(
                flood_prior.posterior_with_prior(db, split.fit, prior), db, pol
            )
        )
        if plan.borrowed[pol][t]:
            diag |= (ok * (1 << BIT_SAR_SERIES_FIT)).astype(np.uint16)
    if not any_valid.any():
        return None, diag, thresholds, False
    if probs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p = np.nanmean(np.stack(probs), axis=0)
        # A pixel seen only by a polarisation without a fit still has SAR evidence: no water.
        p = np.where(np.isfinite(p), p, np.where(any_valid, flood_sar.NO_SPLIT_PROBABILITY, np.nan))
        p = flood_sar.drop_small_water(p, min_pixels=min_water_pixels)
        return p.astype(np.float32), diag, thresholds, True
    # No water class in this scene's backscatter (water-free, or the whole scene darkened by
    # wet snow): SAR gives no likelihood, so each pixel keeps its history prior (Bayes with a
    # flat likelihood); without a history, the split's "no water" stands.
    p = np.full(shape, flood_sar.NO_SPLIT_PROBABILITY, np.float32)
    if prior is not None:
        p = np.where(np.isfinite(prior), np.maximum(p, prior), p)
    p = np.where(any_valid, p, np.nan).astype(np.float32)
    diag |= (any_valid * (1 << BIT_SAR_NO_SPLIT)).astype(np.uint16)
    return p, diag, thresholds, False


def _change_check(
    p_sar: np.ndarray,
    plan: _SarPlan,
    t: int,
    prior: np.ndarray | None,
    *,
    min_drop_db: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Lower SAR water that is dark but not darker than its land reference (`flood_change`)."""
    water = p_sar >= 0.5
    if prior is not None:
        water &= ~(np.isfinite(prior) & (prior >= 0.5))
    hits = flood_change.unchanged_dark(
        water,
        plan.db["vv"][t],
        plan.reference_db,
        water_max_db=flood_sar.WATER_MAX_DB["vv"],
        min_drop_db=min_drop_db,
    )
    p = np.where(hits, np.minimum(p_sar, flood_change.UNCHANGED_DARK_PROBABILITY), p_sar)
    return p.astype(np.float32), hits


def _double_bounce(
    p_sar: np.ndarray,
    plan: _SarPlan,
    t: int,
    *,
    options: flood_double_bounce.DoubleBounceOptions,
) -> tuple[np.ndarray, np.ndarray]:
    """Raise the SAR water probability of flooded forest / built-up pixels (`flood_double_bounce`)."""
    db = plan.db["vv"][t]
    hits = flood_double_bounce.flooded_bright_scatterers(
        db, plan.reference_db, p_sar >= 0.5, options=options
    )
    p = np.where(hits, np.maximum(p_sar, flood_double_bounce.DOUBLE_BOUNCE_PROBABILITY), p_sar)
    return p.astype(np.float32), hits


def _time_selection(ds: xr.Dataset, reference_time: tuple[Any, Any] | None) -> slice:
    """The time steps of the reference period (all of them without ``reference_time``)."""
    if reference_time is None:
        return slice(None)
    if "time" not in ds.coords:
        raise UsageError(
            "reference_time needs a dataset with a time coordinate; pass reference= instead"
        )
    start, end = reference_time
    sel = ds.indexes["time"].slice_indexer(start, end)
    if len(range(*sel.indices(ds.sizes["time"]))) == 0:
        raise UsageError(
            f"reference_time {reference_time} selects no time step of the cube; widen it or pass reference="
        )
    return sel


def _db(values: np.ndarray, *, units: str, window: int) -> np.ndarray:
    return flood_sar.despeckle_db(flood_sar.to_db(values, units=units), window=window)


def _reference(
    water_now: np.ndarray,
    source: np.ndarray,
    ds: xr.Dataset,
    reference: xr.DataArray | np.ndarray | None,
    reference_time: tuple[Any, Any] | None,
    *,
    min_frequency: float,
    min_observations: int,
) -> np.ndarray:
    shape = water_now.shape[1:]
    if reference is not None:
        return flood_reference.reference_from_layer(reference, shape=shape)
    sel = _time_selection(ds, reference_time)
    history, history_source = water_now[sel], source[sel]
    if history.shape[0] == 0:
        raise UsageError(
            f"reference_time {reference_time} selects no time step of the cube; widen it or pass reference="
        )
    return flood_reference.reference_from_sources(
        history, history_source, min_frequency=min_frequency, min_observations=min_observations
    )


def _reflectance_scale(ds: xr.Dataset) -> float:
    """1.0 for reflectance (0-1); 1e-4 when the cube still holds HLS integers (x 1e4)."""
    green = np.asarray(ds["green"][:, ::8, ::8].values, np.float64)
    finite = green[np.isfinite(green)]
    if finite.size and float(np.percentile(finite, 50)) > 2.0:
        return 1e-4
    return 1.0
