"""Flood's two passes (detection per group of dates, then the reference and classes from
the stored outputs of every date) give exactly `flood.run`'s outputs on the whole series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from geoproc.dev.synthetic_cube import synthetic_cube
from geoproc.products import flood
from geoproc.products.flood import incremental, reference

OPTICAL = ("blue", "green", "red", "nir08", "swir16", "swir22")


def _series(nt: int = 9, ny: int = 24, nx: int = 20) -> xr.Dataset:
    """A permanent river, a flood from the middle of the series, clouds (NaN) here and there."""
    ds = synthetic_cube(nt, ny, nx, bands=OPTICAL, chunks=(1, 8, 8), seed=11)
    water = np.zeros((nt, ny, nx), bool)
    water[:, 5:9, :] = True
    water[nt // 2 :, 9:15, 4:14] = True
    for band, value in (("nir08", 0.02), ("swir16", 0.01), ("swir22", 0.005)):
        ds[band].values[water & np.isfinite(ds[band].values)] = value
    ds["fmask"] = (("time", "y", "x"), np.zeros((nt, ny, nx), "u1"))
    ds["fmask"].values[1, :6, :6] = 2  # a cloud on one date
    return ds.assign_coords(time=pd.date_range("2024-01-05", periods=nt, freq="9D").values)


def test_detection_in_date_groups_then_classes_from_the_stored_outputs_equal_run():
    ds = _series().load()
    whole = flood.run(ds)
    groups = [flood.detect_dates(ds.isel(time=slice(t, t + 2))) for t in range(0, 9, 2)]
    detected = xr.concat(groups, dim="time")
    # Pass 1's per-date outputs are final; its diagnostic holds no reference bit.
    for name in ("water_probability", "water_source"):
        np.testing.assert_array_equal(detected[name].values, whole[name].values, err_msg=name)
    diag = detected["diagnostic"].values
    assert not (diag[diag != flood.DIAG_NODATA] & (3 << flood.BIT_REFERENCE_WATER)).any()
    # Group references differ from the series' (the flood is the norm in the late groups) ...
    assert (detected["water"].values != whole["water"].values).any()
    # ... and pass 2, from the stored uint8/uint16 outputs only, restores the series' classes.
    history = {n: detected[n].values for n in incremental.HISTORY_OUTPUTS}
    out = flood.classify_history(history)
    np.testing.assert_array_equal(out["water"], whole["water"].values)
    np.testing.assert_array_equal(out["diagnostic"], whole["diagnostic"].values)
    assert set(np.unique(out["water"])) == {0, 1, 2, 255}
    assert (out["water"][:4] == flood.WATER_FLOOD).sum() == 0  # no flood before it began
    assert (out["water"][5:] == flood.WATER_FLOOD).sum() > 0


def test_classify_history_follows_the_reference_options():
    ds = _series().load()
    options = {"reference_min_frequency": 0.3, "reference_min_observations": 3}
    whole = flood.run(ds, **options)
    detected = flood.detect_dates(ds, **options)
    out = flood.classify_history(
        {n: detected[n].values for n in incremental.HISTORY_OUTPUTS}, **options
    )
    np.testing.assert_array_equal(out["water"], whole["water"].values)
    np.testing.assert_array_equal(out["diagnostic"], whole["diagnostic"].values)
    assert (out["water"] != flood.run(ds)["water"].values).any()  # the options mattered


def test_reference_from_counts_summed_over_date_groups_equals_reference_from_sources():
    rng = np.random.default_rng(1)
    seen: set[str] = set()
    for trial in range(20):
        nt = int(rng.integers(2, 12))
        water = rng.choice([0.0, 1.0, np.nan], size=(nt, 9, 7), p=[0.4, 0.3, 0.3])
        source = rng.choice([0, 1, 2, 3, 4, 5], size=(nt, 9, 7)).astype(np.uint8)
        if trial % 3 == 0:
            source[:] = 1  # one kind of evidence only: the others are never looked at
        k = nt // 2
        counts = reference.occurrence_counts(water[:k], source[:k]) + reference.occurrence_counts(
            water[k:], source[k:]
        )
        for frequency, looks in ((0.5, 2), (1 / 3, 3), (0.75, 1), (0.5, 0)):
            want = reference.reference_from_sources(
                water, source, min_frequency=frequency, min_observations=looks
            )
            got = reference.reference_from_counts(
                counts, min_frequency=frequency, min_observations=looks
            )
            np.testing.assert_array_equal(got, want)
            seen |= {"water"} if (want == 1).any() else set()
            seen |= {"dry"} if (want == 0).any() else set()
            seen |= {"unknown"} if np.isnan(want).any() else set()
    assert seen == {"water", "dry", "unknown"}  # every outcome was compared


def test_classes_a_few_dates_at_a_time_from_summed_counts_equal_run():
    ds = _series().load()
    whole = flood.run(ds)
    detected = flood.detect_dates(ds)
    history = {n: detected[n].values for n in incremental.HISTORY_OUTPUTS}
    slabs = [slice(0, 4), slice(4, 8), slice(8, 9)]
    counts = None
    for s in slabs:
        counts = flood.history_counts({n: v[s] for n, v in history.items()}, counts)
    for s in slabs:
        out = flood.classify_history({n: v[s] for n, v in history.items()}, counts)
        np.testing.assert_array_equal(out["water"], whole["water"].values[s])
        np.testing.assert_array_equal(out["diagnostic"], whole["diagnostic"].values[s])
