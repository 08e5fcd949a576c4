"""The regional Prefect flow runs the same stages as the CLI, through Prefect's real API."""

from __future__ import annotations

import pytest

from tests.conftest import run_request

pytestmark = pytest.mark.integration


def test_regional_flow_on_a_built_output_skips_everything(
    small_run, sample_archive_small, stac_api_small
):
    from prefect.testing.utilities import prefect_test_harness

    from flows.regional import regional_mapping

    out, first = small_run
    with prefect_test_harness(server_startup_timeout=120):
        state = regional_mapping(
            request=run_request(sample_archive_small, stac_api_small, out), return_state=True
        )
        assert state.is_completed()
        report = state.result()
    assert report["run_id"] == first["run_id"]
    assert set(report["cubes"]) == set(first["cubes"])
    assert all(not c["steps_written"] for c in report["cubes"].values())
    assert {k: v["status"] for k, v in report["products"].items()} == dict.fromkeys(
        first["products"], "skipped"
    )


def test_transient_errors_retry_and_bad_input_does_not():
    from flows.regional import is_transient
    from geoproc.errors import CatalogError, InvalidDateError

    class _State:
        def __init__(self, exc):
            self.exc = exc

        def result(self):
            raise self.exc

    assert is_transient(None, None, _State(ConnectionResetError("reset by peer")))
    assert is_transient(
        None, None, _State(CatalogError("catalog answered 503 Service Unavailable"))
    )
    assert not is_transient(
        None, None, _State(InvalidDateError("--start 2024-13-01 is not a date"))
    )
    assert not is_transient(None, None, _State(ValueError("shapes do not match")))


def test_library_never_imports_prefect():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1] / "geoproc"
    offenders = [
        str(p)
        for p in root.rglob("*.py")
        if "import prefect" in p.read_text() or "from prefect" in p.read_text()
    ]
    assert offenders == []


def test_backfill_flow_ends_partial_when_a_unit_fails(
    small_run, sample_archive_small, stac_api_small, tmp_path
):
    import json
    import os
    import shutil
    import socket

    from prefect.testing.utilities import prefect_test_harness

    from flows.backfill import backfill

    clean_out, first = small_run
    out = tmp_path / "out"
    shutil.copytree(clean_out / "cubes", out / "cubes")
    locked = sorted(first["cubes"])[0]
    shutil.rmtree(out / "cubes" / f"{locked}.zarr")  # work to do, but a live build holds the lock
    (out / "cubes" / f"{locked}.zarr.lock").write_text(
        json.dumps({"host": socket.gethostname(), "pid": os.getpid()})
    )
    request = run_request(sample_archive_small, stac_api_small, out)
    with prefect_test_harness(server_startup_timeout=120):
        state = backfill(request=request, period_months=6, workers=1, return_state=True)
    assert state.name == "Partial" and locked in state.message
    report = state.result()
    assert report["units"] == {"total": 6, "done": 0, "skipped": 4, "failed": 1, "blocked": 1}


def test_deploy_regional_creates_a_scheduled_deployment():
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.testing.utilities import prefect_test_harness

    from geoproc.cli import main

    with prefect_test_harness(server_startup_timeout=120):
        rc = main([
            "deploy", "regional", "--cron", "0 6 * * 1", "--name", "weekly", "--catalog", "http://127.0.0.1:9",
            "--aoi", "11.9,47.4,12.1,47.6", "--start", "2024-01-01", "--end", "2024-12-31", "--out", "/tmp/geoproc-deploy-test",
        ])  # fmt: skip
        assert rc == 0

        async def read():
            async with get_client() as client:
                return await client.read_deployment_by_name("regional-mapping/weekly")

        deployment = asyncio.run(read())
    assert [s.schedule.cron for s in deployment.schedules] == ["0 6 * * 1"]
    assert deployment.parameters["aoi"] == "11.9,47.4,12.1,47.6"
    assert deployment.parameters["products"] == "flood,lst,canopy"


def test_deploy_rejects_a_bad_cron(capsys):
    from geoproc.cli import main

    rc = main(["deploy", "regional", "--cron", "every monday", "--catalog", "http://x", "--aoi", "1,1,2,2",
               "--start", "2024-01-01", "--end", "2024-01-02", "--out", "/tmp/x"])  # fmt: skip
    assert rc == 2 and "--cron" in capsys.readouterr().err
