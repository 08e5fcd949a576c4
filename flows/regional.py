"""Regional mapping flow: the pipeline's stages as Prefect tasks, one per stage and tile.

Only wiring lives here: every task calls one `geoproc.pipeline` function, arrays stay in
the Zarr stores, and task results are small JSON records (so Prefect's result store never
fills with arrays). Only transient errors (network, throttling, 5xx) are retried; a bad
request fails at once with its message.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.concurrency import apply_tag_limits, requested_limits
from geoproc import dask_exec, pipeline
from geoproc.errors import EndpointUnavailableError, GeoprocError
from geoproc.request import DEFAULT_COLLECTIONS, RunRequest

_TRANSIENT_WORDS = (
    "timed out",
    "timeout",
    "connection",
    "temporar",
    "throttl",
    "slow down",
    " 429",
    " 500",
    " 502",
    " 503",
    " 504",
)


def is_transient(task, task_run, state) -> bool:
    """Retry only errors that a second attempt can fix; never a GeoprocError about input."""
    try:
        state.result()
    except EndpointUnavailableError:
        return True
    except GeoprocError as exc:
        return exc.exit_code != 2 and any(w in str(exc).lower() for w in _TRANSIENT_WORDS)
    except (ConnectionError, TimeoutError, OSError):
        return True
    except Exception as exc:  # noqa: BLE001 - classify unknown errors by their message
        return any(w in str(exc).lower() for w in _TRANSIENT_WORDS)
    return False


_RETRY = {
    "retries": 3,
    "retry_delay_seconds": [2, 10, 30],
    "retry_condition_fn": is_transient,
    "cache_policy": NO_CACHE,
}


@task(name="plan-and-search", tags=["catalog"], **_RETRY)
def plan_and_search(request: RunRequest):
    tiles = pipeline.plan(request)
    return tiles, pipeline.search(request, tiles)


@task(name="build-cube", tags=["object-store"], **_RETRY)
def build_cube(request: RunRequest, tile, steps, dask_address: str | None = None) -> dict:
    return pipeline.dispatch_build_cube(request, tile, steps, dask_address=dask_address)


@task(name="run-product", tags=["object-store"], **_RETRY)
def run_product(
    request: RunRequest, product: str, tile_id: str, dask_address: str | None = None
) -> dict:
    return pipeline.dispatch_run_product(request, product, tile_id, dask_address=dask_address)


@task(name="publish", tags=["object-store"], **_RETRY)
def publish(request: RunRequest, run_id: str) -> dict:
    return pipeline.publish(request, run_id)


@task(name="write-report", cache_policy=NO_CACHE)
def write_report(request: RunRequest, run_id: str, report: dict) -> str:
    return pipeline.write_report(request, run_id, report)


@flow(name="regional-mapping", log_prints=True)
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
    Dask scheduler (keys `geoproc-build-cube-*`, `geoproc-run-product-*`). The tags
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
    run_id = pipeline.run_id_for(request)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    tiles, found = plan_and_search(request)
    timings["search"] = time.perf_counter() - t0
    logger.info("run %s: %d tile(s), %d items found", run_id, len(tiles), found.found)
    t0 = time.perf_counter()
    futures = {
        t.id: build_cube.submit(request, t, found.tiles[t.id].steps, dask_address)
        for t in tiles
        if found.tiles[t.id].steps
    }
    cubes = {tid: f.result() for tid, f in futures.items()}
    timings["cube"] = time.perf_counter() - t0
    products_done: dict[str, dict] = {}
    for product in request.products:  # products in turn, tiles in parallel: a time per product
        t0 = time.perf_counter()
        product_futures = {
            tid: run_product.submit(request, product, tid, dask_address) for tid in cubes
        }
        products_done.update({f"{product}/{tid}": f.result() for tid, f in product_futures.items()})
        timings[f"product:{product}"] = time.perf_counter() - t0
    published = None
    if publish_outputs and cubes:
        t0 = time.perf_counter()
        published = publish(request, run_id)
        timings["publish"] = time.perf_counter() - t0
    report = pipeline.summarise_run(
        request, run_id, found=found, cubes=cubes, products=products_done, timings=timings,
        published=published,
    )  # fmt: skip
    report["report_url"] = write_report(request, run_id, report)
    return report
