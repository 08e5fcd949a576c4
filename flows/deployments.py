"""Deployments: the regional flow on a cron schedule, registered with a Prefect API.

`geoproc deploy regional --cron ...` calls `deploy_regional`; a Prefect worker on the named
work pool (or `prefect deployment run`) then starts the runs. Parameters are plain JSON
(no credentials: stores and catalogs read theirs from the worker's environment).

The entrypoint is the module path `flows.regional.regional_mapping`, so any worker where
geoproc is installed (a process pool anywhere, the container image) can load the flow
without the deployer's working folder being copied to it.
"""

from __future__ import annotations

from uuid import UUID

from flows.regional import regional_mapping


def deploy_regional(
    *,
    name: str,
    cron: str,
    parameters: dict,
    work_pool: str | None = None,
    timezone: str = "UTC",
) -> UUID:
    """Create or update the deployment `regional-mapping/{name}`; returns its id."""
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.deployments.runner import EntrypointType

    deployment = regional_mapping.to_deployment(
        name=name,
        schedule=CronSchedule(cron=cron, timezone=timezone),
        parameters=parameters,
        work_pool_name=work_pool,
        entrypoint_type=EntrypointType.MODULE_PATH,
        tags=["geoproc", "regional"],
        description="geoproc regional mapping: new acquisitions -> cubes -> products -> publish",
    )
    return deployment.apply(work_pool_name=work_pool)
