"""Backfills: units of tile x period on a Dask LocalCluster, resumed from the stores themselves."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from datetime import date

import pytest

from geoproc.backfill import periods, plan_units, run_backfill
from geoproc.errors import UsageError
from tests.conftest import run_request


def test_periods_cover_the_range_without_gaps():
    spans = periods(date(2024, 1, 15), date(2024, 12, 31), months=3)
    assert spans[0] == (date(2024, 1, 15), date(2024, 3, 31))  # calendar-aligned periods
    assert spans[-1][1] == date(2024, 12, 31)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert (start - end).days == 1
    assert periods(date(2024, 2, 1), date(2024, 2, 29), months=12) == [
        (date(2024, 2, 1), date(2024, 2, 29))
    ]
    with pytest.raises(UsageError, match="--period-months"):
        periods(date(2024, 1, 1), date(2024, 2, 1), months=0)


def _digest(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.integration
def test_backfill_resumes_from_stores_and_isolates_a_failing_unit(
    small_run, sample_archive_small, stac_api_small, tmp_path
):
    clean_out, first = small_run
    out = tmp_path / "out"
    shutil.copytree(clean_out / "cubes", out / "cubes")
    tiles = sorted(first["cubes"])
    rebuilt, locked, untouched = tiles[0], tiles[1], tiles[2]
    shutil.rmtree(out / "cubes" / f"{rebuilt}.zarr")  # as if the backfill never got there
    # a live build holds this tile: its first unit fails, its later units are blocked
    shutil.rmtree(out / "cubes" / f"{locked}.zarr")
    (out / "cubes" / f"{locked}.zarr.lock").write_text(
        json.dumps({"host": socket.gethostname(), "pid": os.getpid()})
    )

    request = run_request(sample_archive_small, stac_api_small, out)
    _, units = plan_units(request, period_months=3)
    assert len(units) == 12
    report = run_backfill(request, period_months=3, workers=1)

    assert report["status"] == "partial"
    by_tile = report["unit_results"]
    assert [r["status"] for r in by_tile[rebuilt]] == ["done"] * 4
    assert [r["status"] for r in by_tile[untouched]] == ["skipped"] * 4
    assert [r["status"] for r in by_tile[locked]] == ["failed", "blocked", "blocked", "blocked"]
    assert "lock" in by_tile[locked][0]["reason"]
    assert {k.split("/")[1] for k in report["products"]} == {rebuilt, untouched}
    # four appends in date order give the bytes of the one-shot build
    assert _digest(out / "cubes" / f"{rebuilt}.zarr") == _digest(
        clean_out / "cubes" / f"{rebuilt}.zarr"
    )
    saved = json.loads((out / "runs" / f"backfill-{report['run_id']}" / "report.json").read_text())
    assert saved["units"] == {"total": 12, "done": 4, "skipped": 4, "failed": 1, "blocked": 3}
