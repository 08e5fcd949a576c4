"""Occurrence counts from the stored uint8 classes equal those of the float look series."""

from __future__ import annotations

import numpy as np
import pytest

from geoproc.products.flood import reference
from geoproc.products.flood.incremental import stored_counts, water_now


@pytest.mark.parametrize("seed", range(5))
def test_stored_counts_equal_the_look_series_counts(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 30)), 17, 23)
    water = rng.choice(np.array([0, 1, 2, 3, 255], np.uint8), shape)
    source = rng.choice(np.arange(8, dtype=np.uint8), shape)
    want = reference.occurrence_counts(water_now(water), source)
    got = stored_counts(water, source)
    assert got.dtype == want.dtype == np.int32 and got.shape == (3, 2, 17, 23)
    np.testing.assert_array_equal(got, want)
    assert got[:, 1].sum() > 0 and got[:, 0].sum() > 0  # both kinds of look were counted
