"""Selecting cube steps keeps the per-step attributes aligned, and leaves the cube's own."""

from __future__ import annotations

import numpy as np
import xarray as xr

from geoproc.cube.per_step_attrs import select_steps


def _cube(n: int = 4) -> xr.Dataset:
    ds = xr.Dataset({"a": (("time", "y"), np.arange(n * 2).reshape(n, 2))})
    ds.attrs["geoproc:source_items"] = [[f"item-{t}"] for t in range(n)]
    ds.attrs["geoproc:source_versions"] = [[f"v{t}"] for t in range(n)]
    ds.attrs["title"] = "cube"
    return ds


def test_slices_and_indices_cut_every_per_step_attribute():
    ds = _cube()
    part = select_steps(ds, slice(1, 3))
    assert part.attrs["geoproc:source_items"] == [["item-1"], ["item-2"]]
    assert part.attrs["geoproc:source_versions"] == [["v1"], ["v2"]]
    assert part.attrs["title"] == "cube"
    picked = select_steps(ds, np.array([3, 0]))
    assert picked.attrs["geoproc:source_items"] == [["item-3"], ["item-0"]]
    np.testing.assert_array_equal(picked["a"].values, [[6, 7], [0, 1]])


def test_the_cube_keeps_its_own_attributes():
    """`Dataset.isel` shares the attrs dict: writing the selection's must not touch the cube."""
    ds = _cube()
    select_steps(ds, slice(2, 3))
    assert ds.attrs["geoproc:source_items"] == [[f"item-{t}"] for t in range(4)]


def test_an_attribute_of_another_length_is_left_as_it_is():
    ds = _cube()
    ds.attrs["geoproc:source_items"] = ["only-one"]
    assert select_steps(ds, slice(0, 2)).attrs["geoproc:source_items"] == ["only-one"]
