"""Run pipeline stages on an existing Dask scheduler (`--dask-address`), with recognisable keys.

Why a helper rather than Prefect's Dask task runner: arrays flow through the Zarr stores,
so a stage is one small remote call (`pipeline.build_cube`, `pipeline.run_product`) that
returns a JSON-able record; the orchestrator (the CLI or a Prefect task) stays where it
is and only the array work moves to the cluster. Every call is one Dask task whose key
starts with a fixed prefix (`geoproc-build-cube-`, `geoproc-run-product-`), so an
operator, or a test, reads from the scheduler how many stages it executed
(`executed_task_counts`). Workers import `geoproc` themselves, so they need the same
installation (the container image of `infra/`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from geoproc.errors import UsageError

log = logging.getLogger(__name__)

BUILD_CUBE_PREFIX = "geoproc-build-cube"
RUN_PRODUCT_PREFIX = "geoproc-run-product"
CONNECT_TIMEOUT_S = 20.0


def task_key(prefix: str, *parts: str) -> str:
    """A unique task key `{prefix}-{parts}-{hex}`; Dask groups it under `prefix` (+ parts without digits)."""
    return "-".join((prefix, *parts, uuid.uuid4().hex[:12]))


@contextmanager
def scheduler_client(address: str, *, timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator[Any]:
    """A `distributed.Client` on `address`, closed on exit; a clear error when nobody answers."""
    from distributed import Client

    if not isinstance(address, str) or not address.strip():
        raise UsageError("--dask-address is empty: pass tcp://HOST:PORT of a Dask scheduler.")
    try:
        client = Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UsageError(
            f"--dask-address {address}: no Dask scheduler answered within {timeout_s:.0f} s "
            f"({type(exc).__name__}): start one (`dask scheduler`) or pass the right address."
        ) from exc
    shared = []
    try:
        shared = share_credentials(client)
        yield client
    finally:
        if shared:  # a shared scheduler must not hand our credentials to later clients
            with contextlib.suppress(Exception):
                client.unregister_worker_plugin(CREDENTIALS_PLUGIN)
        client.close()


CREDENTIALS_PLUGIN = "geoproc-credentials"


def share_credentials(client) -> list[str]:
    """Copy the asset-credential variables onto the cluster's workers; returns their names.

    Why: assets are signed and opened on the workers (`geoproc.catalog.credentials`), and a
    remote scheduler's workers do not share this process's environment. A worker plugin
    sets them on every worker now and on each worker that joins or restarts later. The
    values travel to the scheduler inside the plugin, never in task graphs or logs.
    """
    from geoproc.catalog.credentials import worker_environment

    env = worker_environment()
    if not env:
        return []
    names = sorted(env)
    try:
        client.register_plugin(_credentials_plugin_class()(env), name=CREDENTIALS_PLUGIN)
    except Exception as exc:  # noqa: BLE001 - a worker that lacks them fails later, naming them
        log.warning(
            "Could not set %s on the Dask workers: %s", ", ".join(names), type(exc).__name__
        )
        return []
    log.info("Dask workers given the credential variables %s", ", ".join(names))
    return names


@functools.cache
def _credentials_plugin_class() -> type:
    """The worker plugin class, built on first use so importing this module skips distributed."""
    from distributed import WorkerPlugin

    class CredentialEnvironment(WorkerPlugin):
        """Sets credential variables in a worker's environment (values never in its repr)."""

        def __init__(self, env: dict[str, str]) -> None:
            self.env = dict(env)

        def setup(self, worker) -> None:
            self.before = {k: os.environ.get(k) for k in self.env}
            os.environ.update(self.env)

        def teardown(self, worker) -> None:
            for key, value in getattr(self, "before", {}).items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

        def __repr__(self) -> str:
            return f"CredentialEnvironment({', '.join(sorted(self.env))})"

    return CredentialEnvironment


def run_on_scheduler(address: str, fn: Callable[..., Any], *args: Any, key: str) -> Any:
    """Run `fn(*args)` as one task named `key` on the scheduler at `address`; returns its result.

    The remote exception is re-raised here unchanged (a `GeoprocError` stays one), so
    retry rules and reports treat local and remote failures alike.
    """
    with scheduler_client(address) as client:
        future = client.submit(fn, *args, key=key, pure=False)
        return future.result()


def build_cube_on(address: str, request, tile, steps) -> dict:
    """`pipeline.build_cube` for one tile, executed on the scheduler at `address`."""
    from geoproc import pipeline

    return run_on_scheduler(
        address, pipeline.build_cube, request, tile, steps, key=task_key(BUILD_CUBE_PREFIX, tile.id)
    )


def run_product_on(address: str, request, product: str, tile_id: str) -> dict:
    """`pipeline.run_product` for one (product, tile), executed on the scheduler at `address`."""
    from geoproc import pipeline

    return run_on_scheduler(
        address,
        pipeline.run_product,
        request,
        product,
        tile_id,
        key=task_key(RUN_PRODUCT_PREFIX, product, tile_id),
    )


def executed_task_counts(address: str) -> dict[str, int]:
    """Tasks the scheduler has finished per geoproc key prefix (`geoproc-run-product-flood`, ...).

    Read from the scheduler's task prefixes, which keep their counters after the tasks
    themselves are forgotten.
    """

    def _counts(dask_scheduler) -> dict[str, int]:
        return {
            name: int(prefix.state_counts.get("memory", 0))
            for name, prefix in dask_scheduler.task_prefixes.items()
            if name.startswith("geoproc-")
        }

    with scheduler_client(address) as client:
        return client.run_on_scheduler(_counts)


def dashboard_link(address: str) -> str | None:
    """The scheduler's dashboard URL, or None when it runs without one."""
    with scheduler_client(address) as client:
        return dashboard_of(client)


def dashboard_of(client) -> str | None:
    """The dashboard URL of a connected client's scheduler, or None when it has none."""
    try:
        info = client.scheduler_info()
    except Exception:  # noqa: BLE001 - a dashboard link is a courtesy, never a failure
        return None
    if "dashboard" not in info.get("services", {}):
        return None
    return client.dashboard_link


PERFORMANCE_REPORT_LINK = "dask_performance_report"


class PerformanceReport:
    """Dask's own performance report (`distributed.performance_report`) of a run's Dask work,
    written next to the run report and linked from it.

    Why `start`/`finish` rather than a ``with`` block around the stages: the pipeline opens a
    short-lived client per stage call (`run_on_scheduler`), and the scheduler collects the
    report of every task it ran since `start` whichever client sent it, so no client has
    to stay open across the run. The file name carries the UTC start time, so a rerun of
    the same run id never replaces the report of the run that did the work, and the link
    is relative to ``runs/{run_id}/`` like the report's other links. Without a scheduler
    address (and when Dask cannot produce the report) it does nothing and links nothing:
    the report is a courtesy, never a reason for a run to fail.
    """

    def __init__(self, folder, address: str | None = None) -> None:
        from datetime import UTC, datetime

        self.folder = folder
        self.address = address
        self.name = f"dask-performance-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.html"
        self._report = None

    def start(self, client=None) -> PerformanceReport:
        """Mark the start on the scheduler (``client``, or a client on ``address``)."""
        if client is None and not self.address:
            return self
        from distributed import performance_report

        report = performance_report(filename="", mode="inline")
        try:
            with _client_or(client, self.address) as active, active.as_current():
                report.__enter__()
        except Exception as exc:  # noqa: BLE001 - see the class docstring
            log.warning("Dask performance report not started: %s", exc)
            return self
        self._report = report
        return self

    def finish(self, client=None) -> dict[str, str]:
        """Write the report of everything since `start`; returns ``{link name: relative href}``."""
        import tempfile
        from pathlib import Path

        from geoproc import storage

        if self._report is None:
            return {}
        report, self._report = self._report, None
        try:
            with tempfile.TemporaryDirectory() as tmp:
                report.filename = str(Path(tmp) / self.name)
                with _client_or(client, self.address) as active, active.as_current():
                    report.__exit__(None, None, None)
                data = Path(report.filename).read_bytes()
            storage.write_bytes_atomic(self.folder.join(self.name), data)
        except Exception as exc:  # noqa: BLE001 - see the class docstring
            log.warning("Dask performance report not written: %s", exc)
            return {}
        return {PERFORMANCE_REPORT_LINK: self.name}


@contextmanager
def _client_or(client, address: str | None) -> Iterator[Any]:
    if client is not None:
        yield client
    else:
        with scheduler_client(address) as opened:
            yield opened
