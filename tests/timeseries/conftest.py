"""Small cube-like stores for the time-series tests (packed as the cube writer packs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.timeseries_cube import DATES, NX, NY


@pytest.fixture(scope="session")
def _cube_once(tmp_path_factory) -> Path:
    from geoproc.dev.bench._timeseries_cube import write_packed_cube

    path = tmp_path_factory.mktemp("ts") / "T1.zarr"
    write_packed_cube(str(path), dates=DATES, ny=NY, nx=NX, chunks=(1, 32, 32), incomplete=(2,))
    return path


@pytest.fixture
def cube(_cube_once, tmp_path) -> Path:
    """A 6-date cube store, date 2 incomplete, chunks (1, 32, 32), Zarr v3 like the cube writer."""
    import shutil

    path = tmp_path / "cubes" / "T1.zarr"
    shutil.copytree(_cube_once, path)
    return path
