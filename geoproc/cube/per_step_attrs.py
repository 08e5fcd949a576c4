"""Cube attributes with one entry per time step, kept aligned when steps are selected.

Why: ``geoproc:source_items`` names each step's items (and so, for Landsat Collection 2,
its sensor and thermal band constants) and ``geoproc:source_versions`` their versions.
``Dataset.isel(time=...)`` keeps attributes whole, so a block of a few dates, or the
thermal steps of a mixed cube, would read the entries of other steps: LST then took
Landsat 8 constants for a TM or ETM+ step.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

PER_STEP_ATTRS = ("geoproc:source_items", "geoproc:source_versions")
"""Cube attributes with one entry per time step: which items, and which version of each.

Both decide a product's inputs: a reprocessed item keeps its id, so only its version
(``updated``, processing version) tells that a rewritten cube step changed."""


def select_steps(ds: xr.Dataset, steps: slice | np.ndarray | list[int]) -> xr.Dataset:
    """``ds.isel(time=steps)`` with the per-step attributes cut to the same steps."""
    n = ds.sizes["time"]
    out = ds.isel(time=steps)
    out.attrs = dict(out.attrs)  # isel shares the attrs dict with `ds`
    kept = np.arange(n)[steps]
    for attr in PER_STEP_ATTRS:
        values = ds.attrs.get(attr)
        if isinstance(values, (list, tuple)) and len(values) == n:
            out.attrs[attr] = [values[int(i)] for i in np.atleast_1d(kept)]
    return out
