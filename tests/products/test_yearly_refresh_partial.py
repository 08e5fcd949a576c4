"""A yearly refresh recomputes the due years only: the years kept are copied byte for byte
from the old store, never computed, and the refreshed store equals a clean run; a crash
leaves the old store readable; where the copy cannot be trusted every year is recomputed."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from geoproc.inference import product_stage
from geoproc.product_runner import MARKER
from geoproc.products import yearly_refresh
from tests.helpers.canopy_store_runs import data_files, run_canopy, write_ndvi_cube_at_once

NY = NX = 64
EVERY = 15
"""Tiny tiles and a date every 15 days: 2024 is dates 0-24, 2025 dates 25-48 (2025-12-21),
date 49 is 2026-01-05."""
_CHUNK = re.compile(r"^(canopy_\w+)/(?:c/)?(\d+)[./]")  # v2 0.0.0 or v3 c/0/0/0


@pytest.fixture(scope="module")
def base_cube(tmp_path_factory) -> str:
    """2024 complete and 2025 but its last date (2025-12-21)."""
    url = str(tmp_path_factory.mktemp("base") / "cube.zarr")
    write_ndvi_cube_at_once(url, dates=48, ny=NY, nx=NX, every_days=EVERY)
    return url


@pytest.fixture
def cube(base_cube, tmp_path) -> str:
    url = str(tmp_path / "cube.zarr")
    shutil.copytree(base_cube, url)
    return url


def _extend(url: str, dates: int) -> None:
    first = int(xr.open_zarr(url, consolidated=True).sizes["time"])
    write_ndvi_cube_at_once(url, dates=dates, first=first, ny=NY, nx=NX, every_days=EVERY)


def _year_chunks(files: dict[str, bytes], index: int) -> dict[str, bytes]:
    """The data chunk files of the layer ``index`` along ``year`` of every output."""
    return {k: v for k, v in files.items() if (m := _CHUNK.match(k)) and int(m[2]) == index}


def _marker(store: str) -> dict:
    return json.loads((Path(store) / MARKER).read_text())


@pytest.fixture
def computed_years(monkeypatch) -> list[int]:
    """The ``year`` index of every block computed (kept years must not appear)."""
    seen: list[int] = []
    real = product_stage._run_group

    def spy(blocks, *args, **kwargs):
        seen.extend(b.year for b in blocks)
        return real(blocks, *args, **kwargs)

    monkeypatch.setattr(product_stage, "_run_group", spy)
    return seen


def test_the_last_year_past_the_fraction_is_recomputed_alone(cube, tmp_path, computed_years):
    _extend(cube, 50)  # 2025-12-21 closes 2025, 2026-01-05 opens 2026
    out = str(tmp_path / "out")
    first = run_canopy(cube, out)
    assert first.steps == 3 and first.mode == "space"
    before = data_files(first.store)
    computed_years.clear()

    _extend(cube, 52)  # 2026: 3 dates where the store used 1
    refreshed = run_canopy(cube, out)
    assert refreshed.status == "written" and refreshed.steps == 3
    assert refreshed.update == (
        "recomputed 2026 (gained 2 date(s) = 200.0 % >= 10 %); kept 2024-2025 (complete)"
    )
    assert set(computed_years) == {2}  # no block of 2024 or 2025 ran
    after = data_files(refreshed.store)
    for k in (0, 1):
        assert _year_chunks(before, k) and _year_chunks(after, k) == _year_chunks(before, k)
    assert _year_chunks(after, 2) != _year_chunks(before, 2)
    assert _marker(refreshed.store)["computed_years"] == {"2024": 25, "2025": 24, "2026": 3}

    clean = run_canopy(cube, str(tmp_path / "clean"))
    assert after == data_files(clean.store)  # every data chunk and metadata file


def test_a_new_year_closes_the_last_and_copies_the_older(cube, tmp_path, computed_years):
    out = str(tmp_path / "out")
    first = run_canopy(cube, out)
    assert first.steps == 2
    before = data_files(first.store)
    computed_years.clear()

    _extend(cube, 50)  # 2025-12-21 closes 2025, 2026-01-05 opens 2026
    refreshed = run_canopy(cube, out)
    assert refreshed.steps == 3
    assert refreshed.update == (
        "recomputed 2025 (closed: 1 new date(s), a later year began), 2026 (new: 1 date(s)); "
        "kept 2024 (complete)"
    )
    assert set(computed_years) == {1, 2}
    after = data_files(refreshed.store)
    assert _year_chunks(before, 0) and _year_chunks(after, 0) == _year_chunks(before, 0)
    assert _marker(refreshed.store)["computed_years"] == {"2024": 25, "2025": 24, "2026": 1}
    assert after == data_files(run_canopy(cube, str(tmp_path / "clean")).store)


def test_a_crash_in_a_partial_refresh_leaves_the_old_store(cube, tmp_path, monkeypatch):
    _extend(cube, 50)
    out = str(tmp_path / "out")
    first = run_canopy(cube, out)
    before, marker = data_files(first.store), _marker(first.store)
    _extend(cube, 52)

    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-refresh")

    with monkeypatch.context() as m:
        m.setattr(product_stage, "_run_group", crash)
        with pytest.raises(RuntimeError, match="killed"):
            run_canopy(cube, out)
    assert data_files(first.store) == before and _marker(first.store) == marker
    with xr.open_zarr(first.store, consolidated=True) as old:  # readers see the old version
        assert old["year"].values.tolist() == [2024, 2025, 2026]
        assert int(old["canopy_clear_count"].isel(year=2).max()) <= 1

    rerun = run_canopy(cube, out)
    assert "kept 2024-2025 (complete)" in rerun.update
    assert data_files(rerun.store) == data_files(run_canopy(cube, str(tmp_path / "clean")).store)


def test_a_whole_tile_store_is_copied_from_and_a_whole_tile_run_recomputes_all(
    cube, tmp_path, computed_years
):
    """The whole-tile path writes the blocked path's bytes, so a blocked refresh copies its
    years as well; a refresh run whole-tile recomputes every year and says why."""
    _extend(cube, 50)
    out = str(tmp_path / "out")
    assert run_canopy(cube, out, blocking="tile").mode == "tile"
    _extend(cube, 52)
    partial = run_canopy(cube, out)
    assert partial.update.endswith("; kept 2024-2025 (complete)")
    assert set(computed_years) == {2}
    assert data_files(partial.store) == data_files(run_canopy(cube, str(tmp_path / "c52")).store)

    _extend(cube, 54)  # 2026: 5 dates where the store used 3
    whole = run_canopy(cube, out, blocking="tile")
    assert whole.update == (
        "recomputed 2026 (gained 2 date(s) = 66.7 % >= 10 %); 2024-2025 recomputed too "
        "(this run cuts the cube as 'tile', not in spatial blocks per year)"
    )
    assert _marker(whole.store)["computed_years"] == {"2024": 25, "2025": 24, "2026": 5}
    assert data_files(whole.store) == data_files(run_canopy(cube, str(tmp_path / "c54")).store)


def test_copy_years_refuses_another_layout(tmp_path):
    """Kept years are copied only between arrays of the same metadata but the year count,
    matched by year value (a layer inserted before shifts the indices)."""

    def group(path: str, years: list[int], chunks: tuple = (1, 4, 4)) -> zarr.Group:
        g = zarr.open_group(str(tmp_path / path), mode="w", zarr_format=3)
        g.create_array("year", shape=(len(years),), dtype="int64", dimension_names=("year",))
        g["year"][:] = years
        g.create_array(
            "canopy_class", shape=(len(years), 8, 8), chunks=chunks, dtype="uint8",
            fill_value=255, dimension_names=("year", "y", "x"),
        )  # fmt: skip
        return g

    old = group("old.zarr", [2024, 2025])
    old["canopy_class"][:] = np.arange(2 * 64).reshape(2, 8, 8) % 7
    new = group("new.zarr", [2023, 2024, 2025])
    yearly_refresh.copy_years(old, new, [2024, 2025])
    np.testing.assert_array_equal(new["canopy_class"][1:], old["canopy_class"][:])
    with pytest.raises(yearly_refresh.PartialRefreshUnavailable, match="layout"):
        yearly_refresh.copy_years(old, group("other.zarr", [2024, 2025], (1, 8, 8)), [2024])
    with pytest.raises(yearly_refresh.PartialRefreshUnavailable, match="no layer for 2023"):
        yearly_refresh.copy_years(old, new, [2023])


def test_kept_years_keep_the_count_they_were_computed_with():
    computed, now = {"2024": 74, "2025": 70}, {"2024": 74, "2025": 72, "2026": 1}
    assert yearly_refresh.refreshed_counts(computed, now, ("2026",)) == {
        "2024": 74,
        "2025": 70,
        "2026": 1,
    }
    assert yearly_refresh.year_span(["2021", "2022", "2023", "2025"]) == "2021-2023, 2025"
