"""A yearly product (canopy) recomputes a year only when it is 10 % of its dates behind or
closes; in between the store is kept, byte for byte, and the report says why."""

from __future__ import annotations

import pytest

from geoproc.products import POLICIES, blocking_of
from geoproc.products import canopy as canopy_product
from geoproc.products.yearly_refresh import dates_per_year, decide
from tests.helpers.canopy_store_runs import data_files as _data
from tests.helpers.canopy_store_runs import run_canopy as _run
from tests.helpers.canopy_store_runs import write_ndvi_cube


def test_dates_per_year_counts_calendar_years():
    times = ["2024-12-30T10:30:00", "2024-12-31T23:59:00", "2025-01-01T00:00:00"]
    assert dates_per_year(times) == {"2024": 2, "2025": 1}


def test_decide_keeps_a_year_a_few_dates_behind():
    d = decide({"2024": 20}, {"2024": 21}, refresh_fraction=0.1)
    assert not d.recompute
    assert d.behind == {"2024": 1}
    assert "kept" in d.update and "5.0 % < 10 %" in d.update


def test_decide_recomputes_at_the_fraction_a_new_year_and_a_closed_year():
    grown = decide({"2024": 20}, {"2024": 22}, refresh_fraction=0.1)
    assert grown.recompute and grown.due == ("2024",)
    assert "recomputed 2024 (gained 2 date(s) = 10.0 % >= 10 %)" == grown.update
    closed = decide({"2024": 20}, {"2024": 21, "2025": 1}, refresh_fraction=0.1)
    assert closed.recompute and closed.due == ("2024", "2025")
    assert "2024 (closed: 1 new date(s)" in closed.update and "2025 (new: 1" in closed.update
    # A closed year already complete is not recomputed for the next year's dates alone...
    assert (
        decide({"2024": 21, "2025": 20}, {"2024": 21, "2025": 21}, refresh_fraction=0.1).due == ()
    )
    # ... and a fraction of 0 recomputes on every new date.
    assert decide({"2024": 20}, {"2024": 21}, refresh_fraction=0.0).recompute


def test_canopy_declares_the_yearly_policy():
    declared = blocking_of(canopy_product.SPEC)
    assert declared.incremental == "yearly" and declared.refresh_fraction == 0.1
    assert declared.appends("space", {}) and declared.appends("tile", {})
    assert "10 %" in POLICIES["canopy"]


@pytest.fixture
def cube_url(tmp_path):
    url = str(tmp_path / "cube.zarr")
    write_ndvi_cube(url, dates=20, ny=48, nx=40)
    return url


def _extend(url: str, dates: int, first: int) -> None:
    write_ndvi_cube(url, dates=dates, first=first, ny=48, nx=40)


def test_canopy_store_follows_the_refresh_policy(cube_url, tmp_path):
    out = str(tmp_path / "out")
    first = _run(cube_url, out)
    assert first.status == "written"
    before = _data(first.store)
    assert len(before) > 10

    # One new date in 2024 (1 of 20 = 5 %): kept, not one byte rewritten.
    _extend(cube_url, dates=21, first=20)
    kept = _run(cube_url, out)
    assert kept.status == "skipped"
    assert "kept" in kept.update and "2024: 1 new date(s) = 5.0 %" in kept.update
    assert _data(kept.store) == before
    assert _run(cube_url, out).status == "skipped"  # the same cube again

    # A second one (2 of 20 = 10 %): the year is recomputed and equals a clean run.
    _extend(cube_url, dates=22, first=21)
    grown = _run(cube_url, out)
    assert grown.status == "written" and "2024 (gained 2 date(s)" in grown.update
    clean = _run(cube_url, str(tmp_path / "clean22"))
    assert _data(grown.store) == _data(clean.store)
    assert _data(grown.store) != before

    # One more 2024 date is kept; then the first 2025 date closes 2024 (recomputed with
    # every 2024 date) and opens 2025: the store equals a clean run on the whole cube.
    _extend(cube_url, dates=23, first=22)
    assert _run(cube_url, out).status == "skipped"
    _extend(cube_url, dates=75, first=23)  # date 74 is 2025-01-05
    closed = _run(cube_url, out)
    assert closed.status == "written"
    assert "2024 (closed" in closed.update and "2025 (new" in closed.update
    assert closed.steps == 2
    clean = _run(cube_url, str(tmp_path / "clean75"))
    assert _data(closed.store) == _data(clean.store)
