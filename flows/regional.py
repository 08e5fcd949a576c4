"""Regional mapping flow: the pipeline's stages as Prefect tasks, one per stage and tile.

Only wiring lives here: the flow runs `geoproc.pipeline.run_pipeline` (the CLI's very
loop: same stages, same skips, same errors) with an executor whose every call is a Prefect
task, so the flow and the CLI cannot drift. Each task calls one `geoproc.pipeline` function, arrays stay in
the Zarr stores, and task results are small JSON records (so Prefect's result store never
fills with arrays). Only transient errors (network, throttling, 5xx) are retried; a bad
request fails at once with its message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.concurrency import apply_tag_limits, requested_limits
from geoproc import dask_exec, pipeline
from geoproc.cube.read import is_transient as transient_error
from geoproc.request import DEFAULT_COLLECTIONS, RunRequest


def is_transient(task, task_run, state) -> bool:
    """Prefect's retry condition: `geoproc.cube.read.is_transient`, the one retry rule.

    Why one rule: a flow that retried what the cube reader calls permanent (a corrupt
    file's RasterioIOError is an OSError) would spend its retries on an error that cannot
    change, and the two lists of words would drift apart.
    """
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - the rule classifies every error
        return transient_error(exc)
    return False


_RETRY = {
    "retries": 3,
    "retry_delay_seconds": [2, 10, 30],
    "retry_condition_fn": is_transient,
    "cache_policy": NO_CACHE,
}


@task(name="plan-and-search", tags=["catalog"], **_RETRY)
def plan_and_search(fn: Callable[..., Any], *args: Any):
    return fn(*args)


@task(name="build-cube", tags=["object-store"], **_RETRY)
def build_cube(fn: Callable[..., Any], *args: Any) -> dict:
    return fn(*args)


@task(name="run-product", tags=["object-store"], **_RETRY)
def run_product(fn: Callable[..., Any], *args: Any) -> dict:
    return fn(*args)


@task(name="timeseries-copy", tags=["object-store"], **_RETRY)
def timeseries_copy(fn: Callable[..., Any], *args: Any) -> dict:
    return fn(*args)


@task(name="publish", tags=["object-store"], **_RETRY)
def publish(fn: Callable[..., Any], *args: Any) -> dict:
    return fn(*args)


@task(name="write-report", cache_policy=NO_CACHE)
def write_report(fn: Callable[..., Any], *args: Any) -> str:
    return fn(*args)


def prefect_links() -> dict[str, str]:
    """The current flow run's page in the Prefect UI, as plain data for the run report.

    Empty outside a flow run or when Prefect knows no UI URL (a bare API without the UI):
    the report then shows no Prefect link rather than a dead one.
    """
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_UI_URL

    if not flow_run.id or not PREFECT_UI_URL.value():
        return {}
    return {"prefect_flow_run": str(flow_run.ui_url)}


class PrefectTasks:
    """`geoproc.pipeline.Executor` running each stage call as a Prefect task (with the
    stage's retries and tags); a stage's calls are submitted together, so tiles run in
    parallel on the flow's task runner."""

    TASKS = {
        "plan-and-search": plan_and_search,
        "build-cube": build_cube,
        "run-product": run_product,
        "timeseries-copy": timeseries_copy,
        "publish": publish,
        "write-report": write_report,
    }

    def map(self, stage: str, fn: Callable[..., Any], calls: list[tuple]) -> list:
        futures = [self.TASKS[stage].submit(fn, *args) for args in calls]
        return [f.result() for f in futures]


# validate_parameters=False: RunRequest's `out: Location` annotation is imported only under
# TYPE_CHECKING in geoproc/request.py (to keep the CLI's imports light), so pydantic cannot
# build a model of the `request` parameter; RunRequest.create validates the request itself.
@flow(name="regional-mapping", log_prints=True, validate_parameters=False)
def regional_mapping(
    products: str | list[str] = "flood,lst,canopy",
    aoi: Any = None,
    catalog: str = "",
    out: str = "output",
    start: str = "2024-01-01",
    end: str = "2024-12-31",
    collections: str | list[str] = DEFAULT_COLLECTIONS,
    tile_size_px: int = 1024,
    max_cloud_cover: float = 80.0,
    publish_outputs: bool = True,
    request: RunRequest | None = None,
    dask_address: str | None = None,
    catalog_concurrency: int | None = None,
    object_store_concurrency: int | None = None,
) -> dict:
    """Extend the cubes with new acquisitions, run the products on changed tiles, publish.

    With `dask_address`, every cube build and product run executes as one task on that
    Dask scheduler (keys `geoproc-build-cube-*`, `geoproc-run-product-*`). The run report
    links this flow run's page in the Prefect UI (`prefect_links`). The tags
    `catalog` and `object-store` carry Prefect concurrency limits (`flows.concurrency`).
    """
    logger = get_run_logger()
    request = request or RunRequest.create(
        products=products, aoi=aoi, start=start, end=end, catalog=catalog, out=out,
        collections=collections, options={"tile_size_px": tile_size_px, "max_cloud_cover": max_cloud_cover},
    )  # fmt: skip
    limits, explicit = requested_limits(
        catalog=catalog_concurrency, object_store=object_store_concurrency
    )
    logger.info("concurrency limits in force: %s", apply_tag_limits(limits, explicit=explicit))
    if dask_address:
        logger.info(
            "Dask scheduler %s, dashboard: %s", dask_address, dask_exec.dashboard_link(dask_address)
        )
    return pipeline.run_pipeline(
        request,
        publish_outputs=publish_outputs,
        dask_address=dask_address,
        executor=PrefectTasks(),
        links=prefect_links(),
    )
