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
from tests.helpers.paths import REPO_ROOT


@pytest.fixture(autouse=True)
def _trust_the_local_archive(monkeypatch):
    """The sample archive's items point at local files; its loopback catalog is ours."""
    monkeypatch.setenv("GEOPROC_ALLOW_LOCAL_ASSETS", "true")


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
    small_run, sample_archive_small, stac_api_small, run_request, tmp_path
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
    # the report's tile map: the locked tile failed, the others wrote cube steps or products
    from geoproc.publish.report_charts import tile_status

    assert tile_status(saved) == {rebuilt: "done", untouched: "done", locked: "failed"}
    assert set(saved["tiles"]) == set(tiles)
    # Dask's performance report of the units sits beside the report, linked relatively
    perf = out / "runs" / f"backfill-{report['run_id']}" / saved["links"]["dask_performance_report"]
    assert "geoproc-backfill-unit" in perf.read_text()


def _tile_request(url: str, out, tiles: str, products: str = "lst"):
    from geoproc.request import RunRequest

    return RunRequest.create(
        products=products, aoi=tiles, start="2024-01-01", end="2024-12-31", catalog=url,
        out=str(out), options={"tile_size_px": 128},
    )  # fmt: skip


@pytest.mark.slow  # ~90 s: a clean backfill, a killed one and its rerun
@pytest.mark.integration
def test_a_killed_backfill_reruns_only_the_remaining_units(stac_api_small, tmp_path):
    import signal
    import subprocess
    import sys

    tile = "32N_0188_1371"
    out = tmp_path / "out"
    # a clean backfill first, into the same path (product stores record their cube's URL)
    run_backfill(_tile_request(stac_api_small, out, tile), period_months=3, workers=1)
    stores = (f"cubes/{tile}.zarr", f"products/lst/{tile}.zarr")
    clean = {store: _digest(out / store) for store in stores}
    shutil.rmtree(out)

    cli = [
        sys.executable, "-m", "geoproc", "backfill", "lst", "--catalog", stac_api_small,
        "--aoi", tile, "--tile-size", "128", "--start", "2024-01-01", "--end", "2024-12-31",
        "--out", str(out), "--workers", "1", "--no-publish",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cli, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True, cwd=REPO_ROOT,
    )  # fmt: skip
    seen = []
    try:
        for line in proc.stderr:  # not a terminal: one line per finished unit
            if " unit " in line and line.rstrip().endswith("done"):
                seen.append(line)
                os.killpg(proc.pid, signal.SIGKILL)  # the process and its Dask workers
                break
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert seen, "the backfill finished no unit before it ended"
    assert proc.returncode == -signal.SIGKILL

    rerun = run_backfill(_tile_request(stac_api_small, out, tile), period_months=3, workers=1)
    units = rerun["units"]
    assert units["total"] == 4 and units["failed"] == units["blocked"] == 0
    assert units["skipped"] >= 1  # the unit seen finishing is not done again
    assert units["done"] == 4 - units["skipped"] >= 1
    statuses = [r["status"] for r in rerun["unit_results"][tile]]
    assert statuses == ["skipped"] * units["skipped"] + ["done"] * units["done"]  # date order
    for store in stores:
        assert _digest(out / store) == clean[store], store


@pytest.mark.slow  # ~60 s: a whole tile's backfill in the Prefect flow
@pytest.mark.integration
def test_a_corrupt_input_is_recorded_and_a_corrupt_store_fails_only_its_unit(
    sample_archive_small, stac_api_small, tmp_path
):
    """Behaviour by design: an unreadable COG is masked and recorded (the step stays usable,
    the report names the item and asset); what fails a unit is a store that cannot be read,
    here a product reading a corrupt cube chunk. That failure stays on its tile, is reported
    with its reason, and the flow ends `Partial`."""
    import numpy as np
    import xarray as xr
    from prefect.testing.utilities import prefect_test_harness

    from flows.backfill import backfill
    from geoproc.dev.stac_server import serve_archive
    from geoproc.pipeline import plan, search

    damaged_cog, damaged_store = "32N_0188_1371", "32N_0189_1371"
    archive = tmp_path / "archive"
    shutil.copytree(sample_archive_small, archive, copy_function=os.link)  # hard links: cheap
    out = tmp_path / "out"
    run_backfill(
        _tile_request(stac_api_small, out, damaged_store), period_months=12, workers=1,
        run_products=False,
    )  # fmt: skip
    cube = xr.open_zarr(out / "cubes" / f"{damaged_store}.zarr", consolidated=True)
    l30 = int(np.flatnonzero(cube["platform"].values.astype(str) == "L30")[3])
    (out / "cubes" / f"{damaged_store}.zarr" / "lwir11" / f"{l30}.0.0").write_bytes(b"not a chunk")

    with serve_archive(archive) as url:
        request = _tile_request(url, out, f"{damaged_cog},{damaged_store}")
        window = _tile_request(url, out, damaged_cog)
        steps = search(window, plan(window)).tiles[damaged_cog].steps
        step = next(s for s in steps if s.platform == "S30" and str(s.time) >= "2024-05-01")
        item = step.items[0]
        item_file = archive / "items" / item["collection"] / f"{item['id']}.json"
        href = json.loads(item_file.read_text())["assets"]["B04"]["href"]
        cog = (item_file.parent / href).resolve()
        data = cog.read_bytes()
        cog.unlink()  # break the hard link: the shared archive stays intact
        cog.write_bytes(data[: len(data) // 3])
        with prefect_test_harness(server_startup_timeout=120):
            state = backfill(request=request, period_months=3, workers=1, return_state=True)
    assert state.name == "Partial" and damaged_store in state.message
    report = state.result()
    assert report["units"] == {"total": 8, "done": 4, "skipped": 4, "failed": 0, "blocked": 0}
    errors = [e for r in report["unit_results"][damaged_cog] for e in r.get("asset_errors", [])]
    assert [(e["item"], e["asset"]) for e in errors] == [(item["id"], "B04")]
    assert report["products"][f"lst/{damaged_cog}"]["status"] == "written"
    failed = report["products"][f"lst/{damaged_store}"]
    assert failed["status"] == "failed" and failed["reason"]
    assert [f["unit"] for f in report["failed"]] == [f"lst/{damaged_store}"]
    page = (out / "runs" / f"backfill-{report['run_id']}" / "report.html").read_text()
    assert item["id"] in page and "failed" in page


def test_progress_is_a_bar_on_a_terminal_lines_in_a_log_and_nothing_when_quiet():
    import io

    from geoproc.progress import Progress

    class _Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    def drive(progress: Progress) -> None:
        progress.message("Dask dashboard: http://127.0.0.1:8787/status")
        progress.stage("backfill units", 3)
        for i in range(3):
            progress.advance(f"unit {i} done")
        progress.close()

    log = io.StringIO()
    drive(Progress(stream=log))
    assert log.getvalue().splitlines() == [
        "Dask dashboard: http://127.0.0.1:8787/status",
        "[1/3] unit 0 done",
        "[2/3] unit 1 done",
        "[3/3] unit 2 done",
    ]
    terminal = _Terminal()
    drive(Progress(stream=terminal))
    assert "backfill units: 100%" in terminal.getvalue() and "3/3" in terminal.getvalue()
    assert "[1/3]" not in terminal.getvalue()  # the bar replaces the lines
    for quiet in (_Terminal(), io.StringIO()):
        drive(Progress(stream=quiet, quiet=True))
        assert quiet.getvalue() == ""
