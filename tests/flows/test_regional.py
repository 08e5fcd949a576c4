"""The regional Prefect flow runs the same stages as the CLI, through Prefect's real API."""

from __future__ import annotations

import pytest

from tests.helpers.paths import REPO_ROOT

pytestmark = pytest.mark.integration


def test_regional_flow_on_a_built_output_skips_everything(
    small_run, sample_archive_small, stac_api_small, run_request
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
        from prefect.settings import PREFECT_UI_URL

        ui = PREFECT_UI_URL.value()
    run = state.state_details.flow_run_id
    expected = {"prefect_flow_run": f"{ui}/flow-runs/flow-run/{run}"} if ui else {}
    assert {k: v for k, v in report["links"].items() if k.startswith("prefect")} == expected
    assert report["run_id"] == first["run_id"]
    assert set(report["cubes"]) == set(first["cubes"])
    assert all(not c["steps_written"] for c in report["cubes"].values())
    assert {k: v["status"] for k, v in report["products"].items()} == dict.fromkeys(
        first["products"], "skipped"
    )


def test_transient_errors_retry_and_bad_input_does_not():
    from flows.regional import is_transient
    from geoproc.errors import CatalogError, EndpointUnavailableError, InvalidDateError

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
    assert is_transient(None, None, _State(EndpointUnavailableError("cog server gave up")))


def test_flows_retry_by_the_cube_readers_one_rule():
    """A corrupt file (an OSError) or refused credentials are never retried, as in the reader."""
    from rasterio.errors import RasterioIOError

    from flows.regional import is_transient
    from geoproc.cube.read import is_transient as reader_rule
    from geoproc.errors import CredentialsError

    class _State:
        def __init__(self, exc):
            self.exc = exc

        def result(self):
            raise self.exc

    errors = [
        RasterioIOError("/data/B04.tif: not recognized as a supported file format"),
        CredentialsError("HTTP 403 from the asset server"),
        TimeoutError("read timed out"),
        OSError("HTTP response code: 503"),
    ]
    assert [is_transient(None, None, _State(e)) for e in errors] == [False, False, True, True]
    assert all(is_transient(None, None, _State(e)) == reader_rule(e) for e in errors)


def test_library_never_imports_prefect():

    root = REPO_ROOT / "geoproc"
    offenders = [
        str(p)
        for p in root.rglob("*.py")
        if "import prefect" in p.read_text() or "from prefect" in p.read_text()
    ]
    assert offenders == []


def test_backfill_flow_ends_partial_when_a_unit_fails(
    small_run, sample_archive_small, stac_api_small, run_request, tmp_path
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
    assert deployment.entrypoint == "flows.regional.regional_mapping"  # loadable on any worker


def test_deploy_rejects_a_bad_cron(capsys):
    from geoproc.cli import main

    rc = main(["deploy", "regional", "--cron", "every monday", "--catalog", "http://x", "--aoi", "1,1,2,2",
               "--start", "2024-01-01", "--end", "2024-01-02", "--out", "/tmp/x"])  # fmt: skip
    assert rc == 2 and "--cron" in capsys.readouterr().err


def _where_am_i(x: int) -> tuple[int, str]:
    from distributed import get_worker

    return 2 * x, get_worker().address


def _fails() -> None:
    from geoproc.errors import StoreError

    raise StoreError("cube store is corrupt: delete it and rerun")


def test_stages_run_on_the_dask_scheduler_under_recognisable_keys():
    from distributed import LocalCluster

    from geoproc import dask_exec
    from geoproc.errors import StoreError

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        worker = next(iter(cluster.scheduler.workers))
        key = dask_exec.task_key(dask_exec.BUILD_CUBE_PREFIX, "32N_0188_1371")
        assert dask_exec.run_on_scheduler(address, _where_am_i, 21, key=key) == (42, worker)
        key = dask_exec.task_key(dask_exec.RUN_PRODUCT_PREFIX, "flood", "32N_0188_1371")
        with pytest.raises(
            StoreError, match="delete it and rerun"
        ):  # remote errors keep their type
            dask_exec.run_on_scheduler(address, _fails, key=key)
        assert dask_exec.executed_task_counts(address) == {
            "geoproc-build-cube": 1,
            "geoproc-run-product-flood": 0,  # submitted, but it failed
        }


def test_an_unreachable_dask_address_names_the_option():
    from geoproc import dask_exec
    from geoproc.errors import UsageError

    with pytest.raises(UsageError, match="--dask-address tcp://127.0.0.1:9"):
        with dask_exec.scheduler_client("tcp://127.0.0.1:9", timeout_s=1):
            pass


def test_flows_accept_a_dask_address():
    import inspect

    from flows.regional import regional_mapping

    parameter = inspect.signature(regional_mapping.fn).parameters["dask_address"]
    assert parameter.default is None


def test_concurrency_limits_come_from_options_then_environment(monkeypatch):
    from flows.concurrency import requested_limits
    from geoproc.errors import UsageError

    monkeypatch.delenv("GEOPROC_CATALOG_CONCURRENCY", raising=False)
    monkeypatch.setenv("GEOPROC_OBJECT_STORE_CONCURRENCY", "8")
    assert requested_limits() == ({"catalog": 4, "object-store": 8}, {"object-store"})
    assert requested_limits(catalog=2, object_store=3) == (
        {"catalog": 2, "object-store": 3},
        {"catalog", "object-store"},
    )
    monkeypatch.setenv("GEOPROC_CATALOG_CONCURRENCY", "zero")
    with pytest.raises(UsageError, match="GEOPROC_CATALOG_CONCURRENCY 'zero'"):
        requested_limits()
    with pytest.raises(UsageError, match="--object-store-concurrency 0"):
        requested_limits(catalog=1, object_store=0)


def test_an_unreachable_prefect_api_leaves_the_run_without_limits():
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    from flows.concurrency import apply_tag_limits

    with temporary_settings(
        {PREFECT_API_URL: "http://127.0.0.1:9/api", PREFECT_CLIENT_MAX_RETRIES: 0}
    ):
        assert apply_tag_limits({"catalog": 1}) == {}


@pytest.mark.slow  # ~35 s: a temporary Prefect server plus slot waits
def test_tag_concurrency_limits_hold_and_a_missing_limit_never_blocks():
    import time

    from prefect import flow, task
    from prefect.testing.utilities import prefect_test_harness

    from flows.concurrency import apply_tag_limits, requested_limits

    @task
    def hold(seconds: float) -> tuple[float, float]:
        t0 = time.monotonic()
        time.sleep(seconds)
        return t0, time.monotonic()

    @flow
    def three(tag: str) -> list[tuple[float, float]]:
        futures = [hold.with_options(tags=[tag]).submit(0.6) for _ in range(3)]
        return sorted(f.result() for f in futures)

    def overlaps(windows) -> bool:
        return any(b[0] < a[1] for a, b in zip(windows, windows[1:], strict=False))

    with prefect_test_harness(server_startup_timeout=120):
        limits, explicit = requested_limits(catalog=1)
        assert apply_tag_limits(limits, explicit=explicit) == {"catalog": 1, "object-store": 16}
        # an operator's value on the server stands unless one is given explicitly
        assert apply_tag_limits({"catalog": 4, "object-store": 2}) == {
            "catalog": 1,
            "object-store": 16,
        }
        assert not overlaps(three("catalog"))  # limit 1: one at a time
        assert overlaps(three("no-limit-for-this-tag"))  # no limit: runs at once, no block
