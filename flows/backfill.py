"""Backfill flow: one Prefect task that hands the work units to Dask, and a state that says partial.

Only wiring: the units, their order, resumption and the Dask scheduling live in
`geoproc.backfill`; arrays go through the Zarr stores, the task returns a small record.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from flows.concurrency import apply_tag_limits, requested_limits
from flows.regional import is_transient, prefect_links
from geoproc.backfill import run_backfill, summary
from geoproc.request import RunRequest


@task(
    name="backfill-units",
    retries=2,
    retry_delay_seconds=[10, 60],
    retry_condition_fn=is_transient,
    cache_policy=NO_CACHE,
)
def backfill_units(
    request: RunRequest,
    period_months: int,
    workers: int,
    dask_address: str | None,
    publish_outputs: bool,
    links: dict[str, str],
) -> dict:
    return run_backfill(
        request, period_months=period_months, workers=workers,
        dask_address=dask_address, publish_outputs=publish_outputs, links=links,
    )  # fmt: skip


# validate_parameters=False: as in flows/regional.py, RunRequest names `Location` only for type
# checkers (light CLI imports), so pydantic cannot model it; the request was validated when made.
@flow(name="backfill", validate_parameters=False)
def backfill(
    request: RunRequest,
    period_months: int = 3,
    workers: int = 2,
    dask_address: str | None = None,
    publish_outputs: bool = False,
    catalog_concurrency: int | None = None,
    object_store_concurrency: int | None = None,
):
    """Run every unit; the final state is named `Partial` when some units failed.

    The report links this flow run's page in the Prefect UI and Dask's performance report.
    """
    limits, explicit = requested_limits(
        catalog=catalog_concurrency, object_store=object_store_concurrency
    )
    apply_tag_limits(limits, explicit=explicit)
    report = backfill_units(
        request, period_months, workers, dask_address, publish_outputs, prefect_links()
    )
    if report["status"] == "partial":
        return Completed(name="Partial", message=summary(report), data=report)
    return report
