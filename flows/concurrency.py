"""Prefect concurrency limits for the tasks' tags: at most N catalog calls, M object-store writers.

How Prefect 3.8 enforces them (read in `prefect/task_engine.py`): before a task runs, the
engine takes one slot of the global concurrency limit named `tag:{tag}` for each of the
task's tags, with `suppress_warnings=True`, so a tag WITHOUT a limit never blocks and
never warns. Making the tags' limits real is therefore creating those global limits on
the API the flow talks to (a server, or the temporary local one Prefect starts).

Policy: a limit missing on the server is created with the default (or the value given);
an existing limit is left as the operator set it unless a value is given explicitly
(flow parameter, `--catalog-concurrency`/`--object-store-concurrency`, or the variables
`GEOPROC_CATALOG_CONCURRENCY`/`GEOPROC_OBJECT_STORE_CONCURRENCY`). If the API refuses
(permissions, an old server), the run goes on without limits and says so in the log:
a limit is a courtesy to the catalog and the bucket, never a reason to fail a run.
"""

from __future__ import annotations

import logging
import os

from geoproc.errors import UsageError

DEFAULT_LIMITS = {"catalog": 4, "object-store": 16}
ENV_VARIABLES = {
    "catalog": "GEOPROC_CATALOG_CONCURRENCY",
    "object-store": "GEOPROC_OBJECT_STORE_CONCURRENCY",
}
OPTIONS = {"catalog": "--catalog-concurrency", "object-store": "--object-store-concurrency"}

log = logging.getLogger(__name__)


def requested_limits(
    *, catalog: int | None = None, object_store: int | None = None
) -> tuple[dict[str, int], set[str]]:
    """(limit per tag, tags given explicitly) from the arguments, then the environment, then defaults."""
    given = {"catalog": catalog, "object-store": object_store}
    limits: dict[str, int] = {}
    explicit: set[str] = set()
    for tag, default in DEFAULT_LIMITS.items():
        value: object = given[tag]
        source = OPTIONS[tag]
        if value is None and os.environ.get(ENV_VARIABLES[tag], "").strip():
            value, source = os.environ[ENV_VARIABLES[tag]].strip(), ENV_VARIABLES[tag]
        if value is None:
            limits[tag] = default
            continue
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if number < 1 or str(value).strip() not in (str(number), f"{number}.0"):
            raise UsageError(
                f"{source} {value!r} is not a usable concurrency limit: pass a whole number of 1 "
                f"or more (default {default})."
            )
        limits[tag], explicit = number, explicit | {tag}
    return limits, explicit


def apply_tag_limits(limits: dict[str, int], *, explicit: set[str] = frozenset()) -> dict[str, int]:
    """Create (or, when explicit, update) the global limits `tag:{tag}`; returns the limits in force.

    A tag missing from the result runs without a limit (an inactive limit on the server).

    Never raises for an API problem: the run then proceeds without limits (logged).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )
    from prefect.exceptions import ObjectNotFound

    in_force: dict[str, int] = {}
    try:
        with get_client(sync_client=True) as client:
            for tag, limit in limits.items():
                name = f"tag:{tag}"
                try:
                    existing = client.read_global_concurrency_limit_by_name(name)
                except ObjectNotFound:
                    existing = None
                if existing is None:
                    client.create_global_concurrency_limit(
                        GlobalConcurrencyLimitCreate(name=name, limit=limit)
                    )
                    in_force[tag] = limit
                elif tag in explicit and (existing.limit != limit or not existing.active):
                    client.update_global_concurrency_limit(
                        name, GlobalConcurrencyLimitUpdate(limit=limit, active=True)
                    )
                    in_force[tag] = limit
                elif existing.active:
                    in_force[tag] = int(existing.limit)  # the operator's value stands
    except Exception as exc:  # noqa: BLE001 - limits are a courtesy, never a reason to fail
        log.warning(
            "concurrency limits not applied (%s: %s); running without", type(exc).__name__, exc
        )
    return in_force
