"""New dates for a flood store without reclassifying its published dates.

Policy (as in operational services, which never reclassify a published date: GFM,
Salamon et al. 2021, classifies each new Sentinel-1 scene against its reference water
and keeps the archive; OPERA DSWx products are per granule and never revised): a new date
is classified against the occurrence reference over every date up to and including it,
computed from the store's own per-date ``water`` / ``water_source`` of the older dates
plus the new dates' water. An appended date therefore gets exactly the classes a full run
on the series up to it gives that date; older dates keep theirs. A guard bounds how far
the store may drift from one reference: when the reference with the new dates differs
(water / dry / unknown) from the one the older dates were classified with on more than
``FloodParams.reference_drift_limit`` of the pixels with a known reference, the run
recomputes every date instead.

Only for the spatially blocked configuration (optical evidence, threshold algorithm, the
reference from the cube's history over every date): there each date's detection is per
pixel and only the reference joins the dates. Every other configuration is recomputed in
full (`geoproc.products.POLICIES`).

The same split makes the full blocked run two passes (`detect_dates`, then
`history_counts` / `classify_history`; `geoproc.inference.product_stage.run_two_pass`):
detection over groups of dates of the whole tile, each cube chunk decoded once, then the
reference and the classes over output chunks of the stored uint8/uint16 outputs of every
date (the reference from occurrence counts summed over groups of dates where a chunk's
whole series does not fit the budget).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from geoproc.products.flood import reference as flood_reference
from geoproc.products.flood.params import FloodParams

HISTORY_OUTPUTS = ("water", "water_source", "diagnostic")
"""The stored per-date outputs of the older dates an append reads (encoded values)."""
_WATER_NODATA, _DIAG_NODATA = 255, 65535
_BIT_WATER, _BIT_UNKNOWN = 8, 9
_REFERENCE_BITS = np.uint16((1 << _BIT_WATER) | (1 << _BIT_UNKNOWN))


def water_now(water: np.ndarray) -> np.ndarray:
    """A stored `water` class array as the per-date water (1), dry (0), no data (NaN)."""
    w = np.asarray(water)
    now = (w != 0).astype(np.float32)
    now[w == _WATER_NODATA] = np.nan
    return now


def stored_counts(water: np.ndarray, source: np.ndarray) -> np.ndarray:
    """`flood_reference.occurrence_counts` of stored `water` classes and `water_source`
    flags, counted on the uint8 values themselves: the float32 look series that
    `water_now` builds (4 bytes per pixel and date) took most of an append's time."""
    w = np.asarray(water)
    src = np.asarray(source)
    valid = w != _WATER_NODATA
    wet = valid & (w != 0)
    model = (src & 4) != 0
    optical = ~model & ((src & 1) != 0)
    groups = (model, optical, src == 2)  # as `flood_reference.occurrence_counts` groups them
    out = np.empty((3, 2, *w.shape[1:]), np.int32)
    for k, g in enumerate(groups):
        out[k, 0] = np.count_nonzero(g & wet, axis=0)
        out[k, 1] = np.count_nonzero(g & valid, axis=0)
    return out


def detection_bits(diagnostic: np.ndarray) -> np.ndarray:
    """A diagnostic without the reference bits (8/9) that `flood.classify` adds: the
    detection tests of each date alone (no-data stays no-data)."""
    d = np.asarray(diagnostic)
    return np.where(d == _DIAG_NODATA, d, d & ~_REFERENCE_BITS).astype(np.uint16)


def stored_reference(
    water: np.ndarray, source: np.ndarray, *, min_frequency: float, min_observations: int
) -> np.ndarray:
    """The occurrence reference a full run computes, from stored `water` / `water_source`."""
    return flood_reference.reference_from_sources(
        water_now(water), source, min_frequency=min_frequency, min_observations=min_observations
    )


def classified_reference(diagnostic: np.ndarray) -> np.ndarray:
    """The reference each pixel's oldest valid date was classified with (bits 8/9 of its
    diagnostic): 1 water, 0 dry, NaN unknown or never valid. Appends never touch the oldest
    dates, so the drift is measured against the last full run, not the last append, and
    cannot creep past the limit one append at a time."""
    d = np.asarray(diagnostic)
    valid = d != _DIAG_NODATA
    first = np.take_along_axis(d, valid.argmax(axis=0)[None], axis=0)[0]
    ref = np.where(first & (1 << _BIT_WATER), 1.0, 0.0)
    unknown = ~valid.any(axis=0) | ((first & (1 << _BIT_UNKNOWN)) != 0)
    return np.where(unknown, np.nan, ref).astype(np.float32)


def append_block(
    new: xr.Dataset,
    history: dict[str, np.ndarray],
    *,
    core: dict[str, slice],
    **options,
) -> tuple[xr.Dataset, dict[str, int]]:
    """The new dates' outputs for one spatial block (with its halo), and the block core's
    reference-drift counts.

    ``new``: the new dates' inputs; ``history``: the store's `HISTORY_OUTPUTS` of every
    older date on the same window (encoded values). Each new date is classified against
    the reference over the older dates and the new ones up to it (`flood.classify`, as in
    `flood.run`)."""
    from geoproc.products import flood

    p = _params(options)
    out = flood.run(new, params=p)
    diag = out["diagnostic"].values
    # Undo run()'s classification of the new dates alone: keep the detection bits.
    detected = detection_bits(diag)
    now_new = water_now(out["water"].values)
    src_new = out["water_source"].values
    # The older dates' looks are counted once; each new date adds its own (the counts of
    # consecutive dates add up, `reference_from_counts` equals `reference_from_sources`).
    counts = stored_counts(history["water"], history["water_source"])
    water = np.empty_like(out["water"].values)
    ref = np.full(now_new.shape[1:], np.nan, np.float32)
    for k in range(now_new.shape[0]):
        counts += flood_reference.occurrence_counts(now_new[k : k + 1], src_new[k : k + 1])
        ref = flood_reference.reference_from_counts(
            counts,
            min_frequency=p.reference_min_frequency,
            min_observations=p.reference_min_observations,
        )
        classes, bits = flood.classify(now_new[k : k + 1], detected[k : k + 1], ref)
        water[k], diag[k] = classes[0], bits[0]
    out["water"].values = water
    out["diagnostic"].values = diag
    before = classified_reference(history["diagnostic"])[core["y"], core["x"]]
    after = ref[core["y"], core["x"]]
    known = np.isfinite(before) | np.isfinite(after)
    same = (before == after) | (np.isnan(before) & np.isnan(after))
    return out, {
        "reference_known": int(known.sum()),
        "reference_changed": int((known & ~same).sum()),
    }


def detect_dates(window: xr.Dataset, **options) -> xr.Dataset:
    """Pass 1 of a full blocked run: `flood.run` on some dates of a window, its diagnostic
    reduced to the detection bits (`detection_bits`). Its `water` is classified against
    the reference of these dates only; pass 2 reads from it water / dry / no data alone,
    which no reference changes. `water_probability`, `uncertainty` and `water_source` are
    final: each date's detection depends on that date and pixel only."""
    from geoproc.products import flood

    out = flood.run(window, params=_params(options))
    out["diagnostic"].values = detection_bits(out["diagnostic"].values)
    return out


def history_counts(
    history: dict[str, np.ndarray], counts: np.ndarray | None = None, **options
) -> np.ndarray:
    """Pass 2's statistic over some dates of a window, added to `counts` (those of the
    window's earlier dates): the per-evidence water and valid looks of the stored
    `water` / `water_source` (`flood_reference.occurrence_counts`)."""
    part = stored_counts(history["water"], history["water_source"])
    return part if counts is None else counts + part


def classify_history(
    history: dict[str, np.ndarray], counts: np.ndarray | None = None, **options
) -> dict[str, np.ndarray]:
    """Pass 2 of a full blocked run: from the stored `HISTORY_OUTPUTS` of dates of a window
    (encoded values, as `detect_dates` wrote them), each date's classes against the
    occurrence reference over every date, exactly as `flood.run` computes them on the
    whole series; returns the final encoded `water` and `diagnostic`. ``counts``: the
    `history_counts` of every date of the window, when `history` holds only some of them
    (without: `history` holds every date and gives the reference itself)."""
    from geoproc.products import flood

    p = _params(options)
    now = water_now(history["water"])
    reference = dict(
        min_frequency=p.reference_min_frequency, min_observations=p.reference_min_observations
    )
    if counts is None:
        ref = flood_reference.reference_from_sources(now, history["water_source"], **reference)
    else:
        ref = flood_reference.reference_from_counts(counts, **reference)
    water, diag = flood.classify(now, detection_bits(history["diagnostic"]), ref)
    return {"water": water, "diagnostic": diag}


def append_verdict(counts: dict[str, int], n_new: int, **options) -> tuple[bool, float, str]:
    """Keep the older dates (True) or recompute every date, the drift, and the run-report line."""
    limit = float(_params(options).reference_drift_limit)
    known = counts.get("reference_known", 0)
    drift = counts.get("reference_changed", 0) / known if known else 0.0
    if drift <= limit:
        return (
            True,
            drift,
            f"{n_new} date(s) appended, reference changed on {drift * 100:.2f} % of pixels "
            f"(limit {limit * 100:g} %): older dates kept",
        )
    return False, drift, f"full recompute: reference drift {drift * 100:.2f} % > {limit * 100:g} %"


def _params(options: dict) -> FloodParams:
    """The run's `FloodParams` as `flood.run` builds them: ``params`` is the base object, and
    ``reference`` (None on every appendable run) is an argument of run(), not a field."""
    opts = dict(options)
    base = opts.pop("params", None)
    opts.pop("reference", None)
    return FloodParams.from_options(base, **opts)
