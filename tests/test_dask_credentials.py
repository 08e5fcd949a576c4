"""Asset credentials reach the Dask workers that read the assets.

Why: signing and Earthdata login happen where a granule is opened, on a worker, and a
remote scheduler's workers do not inherit the orchestrator's environment. The cluster is
started *before* the variables are set, so its worker process cannot have inherited them.
"""

from __future__ import annotations

import logging
import os

import pytest

from geoproc import dask_exec

VARIABLES = {"EARTHDATA_TOKEN": "edl-secret-token", "PC_SDK_SUBSCRIPTION_KEY": "pc-secret-key"}


def _seen(names) -> dict[str, str | None]:
    return {n: os.environ.get(n) for n in names}


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    saved = {n: os.environ.pop(n) for n in VARIABLES if n in os.environ}
    try:
        with LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            yield cluster
    finally:
        os.environ.update(saved)


def test_workers_get_credentials_on_connect_and_after_a_restart(cluster, monkeypatch, caplog):
    for name, value in VARIABLES.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.INFO, logger="geoproc.dask_exec")
    with dask_exec.scheduler_client(cluster.scheduler_address) as client:
        seen = client.run(_seen, list(VARIABLES))
        assert list(seen.values()) == [VARIABLES]
        client.restart()  # a fresh worker process, started by the nanny without them
        assert list(client.run(_seen, list(VARIABLES)).values()) == [VARIABLES]
    assert "EARTHDATA_TOKEN" in caplog.text
    assert not any(v in caplog.text for v in VARIABLES.values())  # names only, never values
    # a shared scheduler keeps no credentials plugin for the next client once this one is done
    # (its teardown restores each worker's own values; this LocalCluster's worker was
    # restarted from this process, so it inherited them and they stay)
    for name in VARIABLES:
        monkeypatch.delenv(name)
    with dask_exec.scheduler_client(cluster.scheduler_address) as client:
        plugins = client.run(lambda dask_worker: sorted(dask_worker.plugins))
        assert all(dask_exec.CREDENTIALS_PLUGIN not in names for names in plugins.values())


def test_nothing_is_registered_without_credentials(cluster, monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with dask_exec.scheduler_client(cluster.scheduler_address) as client:
        assert dask_exec.share_credentials(client) == []
