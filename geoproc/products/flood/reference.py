"""Reference ("normal") water, so that flood = water now that is not water in the reference.

Method: a water-occurrence reference from the cube's own history, in the spirit of the
JRC Global Surface Water occurrence layer (Pekel et al. 2016, Nature 540:418) and of the
reference-water masks used by operational SAR flood services (Martinis et al. 2015;
GFM, Salamon et al. 2021, whose reference water holds permanent *and* seasonal water): a
pixel is reference water when it is water in at least ``min_frequency`` of its valid
observations (default 0.5: water is the pixel's normal state. Floods are episodes that
cover a small share of a long history; shore and bank pixels that are water in half of
the looks are the water body's normal edge, not a flood on every date they show water). Users may
restrict the history to a dry-season window or give their own reference layer instead.
Pixels with fewer than ``min_observations`` valid looks have an unknown reference (NaN).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from geoproc.errors import UsageError


def reference_from_history(
    water: np.ndarray,
    *,
    min_frequency: float = 0.5,
    min_observations: int = 2,
) -> np.ndarray:
    """Reference water (1.0), dry (0.0) or unknown (NaN) from a (time, y, x) 0/1/NaN stack."""
    w = np.asarray(water, dtype=np.float32)
    if w.ndim == 2:
        w = w[None]
    n = np.isfinite(w).sum(axis=0)
    hits = np.nansum(w, axis=0)
    return _occurrence(hits, n, min_frequency=min_frequency, min_observations=min_observations)


def _occurrence(
    hits: np.ndarray, n: np.ndarray, *, min_frequency: float, min_observations: int
) -> np.ndarray:
    """The reference from each pixel's water looks (`hits`) and valid looks (`n`): the one
    formula of `reference_from_history` and `reference_from_counts` (counts are exact
    integers either way, so both give the same bits)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        freq = np.asarray(hits, np.float64) / n
    ref = (freq >= min_frequency).astype(np.float32)
    return np.where(n >= max(min_observations, 1), ref, np.nan).astype(np.float32)


def reference_from_sources(
    water: np.ndarray,
    source: np.ndarray,
    *,
    min_frequency: float = 0.5,
    min_observations: int = 2,
) -> np.ndarray:
    """Occurrence reference computed per kind of evidence, water where any kind says so.

    Optical tests and SAR see different water: wind-roughened lakes and narrow rivers are
    often invisible to SAR, flooded vegetation to optical. Pooling the two would let one
    sensor's blind spot pull a permanent lake below ``min_frequency`` and report it as a
    flood on every date; each sensor's own occurrence is therefore judged separately.
    ``source`` holds the `water_source` flags (1 optical, 2 SAR, 4 model) per observation.
    """
    w = np.asarray(water, dtype=np.float32)
    src = np.asarray(source)
    groups = (
        (src & 4) != 0,  # learned model
        ((src & 4) == 0) & ((src & 1) != 0),  # optical (alone or fused with SAR)
        src == 2,  # SAR alone
    )
    refs = [
        reference_from_history(
            np.where(g, w, np.nan), min_frequency=min_frequency, min_observations=min_observations
        )
        for g in groups
        if g.any()
    ]
    if not refs:
        return np.full(w.shape[1:], np.nan, np.float32)
    stack = np.stack(refs)
    known = np.isfinite(stack).any(axis=0)
    return np.where(
        known, np.nanmax(np.where(np.isfinite(stack), stack, -1), axis=0), np.nan
    ).astype(np.float32)


def _evidence_groups(source: np.ndarray) -> tuple[np.ndarray, ...]:
    src = np.asarray(source)
    return (
        (src & 4) != 0,  # learned model
        ((src & 4) == 0) & ((src & 1) != 0),  # optical (alone or fused with SAR)
        src == 2,  # SAR alone
    )


def occurrence_counts(water: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Per kind of evidence (model, optical, SAR alone, as `reference_from_sources` groups
    them), each pixel's water looks and valid looks over a (time, y, x) stack: an int32
    array (3, 2, y, x). Counts of consecutive groups of dates add up, so the reference
    over a long series needs one group of dates in memory at a time (the product stage's
    classification pass); `reference_from_counts` turns them into the reference."""
    w = np.asarray(water, dtype=np.float32)
    finite = np.isfinite(w)
    is_water = finite & (w == 1)
    out = np.empty((3, 2, *w.shape[1:]), np.int32)
    for k, g in enumerate(_evidence_groups(source)):
        out[k, 0] = (g & is_water).sum(axis=0)
        out[k, 1] = (g & finite).sum(axis=0)
    return out


def reference_from_counts(
    counts: np.ndarray, *, min_frequency: float = 0.5, min_observations: int = 2
) -> np.ndarray:
    """`reference_from_sources` of a series from its summed `occurrence_counts` (equal
    bits: a kind of evidence without any look is NaN here and left out there, and NaN
    never wins the maximum over the kinds)."""
    refs = np.stack(
        [
            _occurrence(c[0], c[1], min_frequency=min_frequency, min_observations=min_observations)
            for c in counts
        ]
    )
    known = np.isfinite(refs).any(axis=0)
    return np.where(known, np.nanmax(np.where(np.isfinite(refs), refs, -1), axis=0), np.nan).astype(
        np.float32
    )


def reference_from_layer(layer: xr.DataArray | np.ndarray, *, shape: tuple[int, int]) -> np.ndarray:
    """A user reference layer as 1.0 water / 0.0 dry / NaN unknown on the product grid.

    Accepts booleans, 0/1 numbers (NaN, negatives or 255 are unknown) or a 0/1/2 truth-style
    map where 1 is permanent water. The layer must already be on the product grid.
    """
    arr = np.asarray(layer.values if isinstance(layer, xr.DataArray) else layer)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape != tuple(shape):
        raise UsageError(
            f"reference layer has shape {arr.shape} but the product grid is {tuple(shape)}; "
            "pass a reference on the same (y, x) grid as the input cube (reproject it first)"
        )
    a = arr.astype(np.float32)
    unknown = ~np.isfinite(a) | (a < 0) | (a >= 255)
    return np.where(unknown, np.nan, (a == 1).astype(np.float32)).astype(np.float32)
