"""Worker loss and process loss (issue #8, items 2 and 3): every rerun converges to clean bytes.

Worker loss: a Dask worker process is SIGKILLed while it runs a backfill unit (or a
product task); the nanny restarts it, the scheduler reschedules the task, and the backfill
must complete with no failed unit and the stores of a clean backfill.

Process loss: `geoproc run flood,lst` is SIGKILLed (its whole process group) during search,
cube assembly, inference and publish; after each kill a plain rerun must leave the output
tree byte-identical to a clean run's. Only `runs/` is excluded: run reports carry timings
and the catalog's port by design. The stage each kill actually hit is checked from the
run's traces at the moment of the kill (`tests/helpers/kill_points.py`).

Both compare against a clean run written to the *same* out path (cleared in between),
because product stores and STAC items record the output URL.

The guarantee under test is DESIGN.md's "a crash at any point followed by a rerun gives
the same store as a clean run" (template-first, chunk-aligned idempotent writes, as in
xarray-beam / pangeo-forge-recipes).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import kill_points
from tests.helpers.faults import FaultPlan, fault_proxy
from tests.helpers.paths import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ROOT = REPO_ROOT
TILE = "32N_0188_1371"


@pytest.fixture(autouse=True)
def _trust_the_local_archive(monkeypatch):
    """The sample archive's items point at local files; its loopback catalog is ours."""
    monkeypatch.setenv("GEOPROC_ALLOW_LOCAL_ASSETS", "true")


# ---------------------------------------------------------------- process loss


def _run_argv(catalog: str, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "geoproc", "run", "flood,lst", "--catalog", catalog, "--aoi", TILE,
        "--tile-size", "128", "--start", "2024-06-01", "--end", "2024-07-31", "--out", str(out),
    ]  # fmt: skip


def _run_to_completion(catalog: str, out: Path) -> float:
    import subprocess

    t0 = time.monotonic()
    env = {**os.environ, "GEOPROC_ALLOW_LOCAL_ASSETS": "true"}
    proc = subprocess.run(
        _run_argv(catalog, out), capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return time.monotonic() - t0


@pytest.fixture(scope="module")
def clean_run(stac_api_small, tmp_path_factory):
    """(out path, digest of a clean run there); the folder is emptied for the kill tests."""
    out = tmp_path_factory.mktemp("kills") / "out"
    seconds = _run_to_completion(stac_api_small, out)
    digest = kill_points.tree_digest(out)
    assert any(k.startswith("cog/") for k in digest) and any(k.startswith("stac/") for k in digest)
    assert kill_points.leftovers(out) == []
    shutil.rmtree(out)
    print(f"\nclean run: {seconds:.1f} s, {len(digest)} files")
    return out, digest


def _cube(out: Path) -> Path:
    return out / "cubes" / f"{TILE}.zarr"


def _marker(out: Path, product: str) -> Path:
    from geoproc.product_runner import MARKER

    return out / "products" / product / f"{TILE}.zarr" / MARKER


# point -> (kill when, the stage was still under way at the kill)
KILL_POINTS = {
    "search": (
        lambda run, out, log: run.saw("plan:") and log.requests >= 1,
        lambda lines, out: (
            not any(x.startswith("search:") for x in lines) and not _cube(out).exists()
        ),
    ),
    "assembly": (
        lambda run, out, log: kill_points.any_chunk(_cube(out)),
        lambda lines, out: not any("already complete" in x for x in lines),
    ),
    "inference": (
        lambda run, out, log: (out / "products" / "flood" / f"{TILE}.zarr").is_dir(),
        lambda lines, out: not _marker(out, "lst").exists(),
    ),
    "publish": (
        lambda run, out, log: (out / "cog").is_dir() or (out / "stac").is_dir(),
        lambda lines, out: not any(x.startswith("publish: done") for x in lines),
    ),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_run_killed_during_a_stage_reruns_to_the_clean_bytes(point, clean_run, stac_api_small):
    out, clean = clean_run
    ready, still_in_stage = KILL_POINTS[point]
    # The catalog answers every request after 1 s, so the search stage lasts long enough to
    # be hit; the later stages do not talk to the catalog, and the rerun goes direct (the
    # catalog URL is not written outside runs/: loopback catalogs are never linked).
    slow_catalog = FaultPlan(fraction=1.0, kinds=("slow",), slow_s=1.0)
    env = {**os.environ, "GEOPROC_ALLOW_LOCAL_ASSETS": "true"}
    outcome, attempts = None, 0
    while attempts < 3:  # a stage that ended before the watcher saw it: try again
        attempts += 1
        shutil.rmtree(out, ignore_errors=True)
        with fault_proxy(stac_api_small, slow_catalog) as (proxy_url, log):
            run = kill_points.start(
                _run_argv(proxy_url if point == "search" else stac_api_small, out),
                cwd=ROOT, env=env,
            )  # fmt: skip
            outcome = kill_points.kill_when(run, lambda r: ready(r, out, log))
        if outcome.killed and still_in_stage(outcome.lines, out):
            break
    assert outcome.killed and outcome.returncode < 0, f"never killed during {point}: {outcome}"
    assert still_in_stage(outcome.lines, out), f"{point} had ended at the kill: {outcome.lines}"
    left = kill_points.leftovers(out)
    if point != "search":
        assert kill_points.tree_digest(out) != clean  # the kill left an unfinished tree

    rerun_s = _run_to_completion(stac_api_small, out)

    after = kill_points.tree_digest(out)
    missing = sorted(set(clean) - set(after))
    extra = sorted(set(after) - set(clean))
    changed = sorted(k for k in set(clean) & set(after) if clean[k] != after[k])
    print(
        f"\nkill during {point}: attempt {attempts}, killed after {outcome.seconds:.1f} s, "
        f"left {left[:5]}{'...' if len(left) > 5 else ''}; rerun {rerun_s:.1f} s; "
        f"missing {len(missing)}, extra {len(extra)}, changed {len(changed)}"
    )
    assert (missing, extra, changed) == ([], [], []), (missing[:10], extra[:10], changed[:10])


# ---------------------------------------------------------------- worker loss


def _backfill_request(catalog: str, out: Path):
    from geoproc.request import RunRequest

    return RunRequest.create(
        products="flood,lst", aoi=TILE, start="2024-05-01", end="2024-08-31", catalog=catalog,
        out=str(out), options={"tile_size_px": 128},
    )  # fmt: skip


def _processing(dask_scheduler) -> dict[str, list[str]]:
    """Task keys each worker is running (or has been sent), by worker address."""
    return {
        ws.address: [str(ts.key) for ts in ws.processing] for ws in dask_scheduler.workers.values()
    }


def _complete_steps(cube: Path) -> int:
    import numpy as np
    import zarr

    try:
        return int(np.sum(zarr.open_array(cube / "time_complete", mode="r")[:]))
    except Exception:  # noqa: BLE001 - a store being created has no readable array yet
        return 0


def _laid_out_not_consolidated(cube: Path) -> bool:
    """The template is written but its consolidated metadata is not (yet)."""
    return (
        (cube / ".zgroup").is_file()
        and (cube / "time").is_dir()
        and not (cube / ".zmetadata").exists()
    )


def _band_chunk_written(cube: Path) -> bool:
    """A step's data (not only the template's coordinates) is being written."""
    return any(p.is_file() for p in (cube / "red").glob("[0-9]*")) if cube.is_dir() else False


# moment -> (tasks whose worker is killed, the store state that says the task is under way)
WORKER_KILL_MOMENTS = {
    # between the cube template write and its consolidation (`store._write_layout`)
    "unit-template": ("geoproc-backfill-unit", _laid_out_not_consolidated),
    # while a unit writes its steps' chunks
    "unit-data": ("geoproc-backfill-unit", _band_chunk_written),
    # while the product tasks run (flood and lst, one per worker)
    "product": ("geoproc-run-product", lambda cube: (cube.parents[1] / "products").is_dir()),
}


@pytest.fixture(scope="module")
def backfill_cluster(stac_api_small, tmp_path_factory):
    """A 2-worker LocalCluster (nanny processes) and a clean backfill's digest at `out`."""
    import dask
    from distributed import Client, LocalCluster

    from geoproc.backfill import run_backfill

    out = tmp_path_factory.mktemp("worker-loss") / "out"
    # The environment is for this module only; the workers copy it when they are spawned.
    # A SpecCluster closes a lost worker's nanny for good when no worker of that name is back
    # `lost-worker-timeout` (15 s) after a loss: a second kill of the same worker landing in that
    # instant left the cluster with one worker (CI). The nanny restarts its worker; keep it.
    with (
        pytest.MonkeyPatch.context() as env,
        dask.config.set({"distributed.deploy.lost-worker-timeout": "1h"}),
    ):
        env.setenv("GEOPROC_ALLOW_LOCAL_ASSETS", "true")
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = Client(cluster, set_as_default=False)
        try:
            t0 = time.monotonic()
            report = run_backfill(
                _backfill_request(stac_api_small, out), period_months=2,
                dask_address=cluster.scheduler_address,
            )  # fmt: skip
            clean_s = time.monotonic() - t0
            assert report["status"] == "complete" and report["units"]["done"] == 2
            clean = kill_points.tree_digest(out)
            shutil.rmtree(out)
            print(f"\nclean backfill: {clean_s:.1f} s, {len(clean)} files")
            yield cluster, client, out, clean
        finally:
            client.close()
            cluster.close()


def _kill_worker_when(client, victim: str, under_way, cube: Path, running) -> dict:
    """SIGKILL the worker running a `victim` task once `under_way(cube)`; what was hit."""
    import signal

    pids = client.run(os.getpid)
    t0 = time.monotonic()
    while not running.done():
        busy = {
            addr: [k for k in keys if k.startswith(victim)]
            for addr, keys in client.run_on_scheduler(_processing).items()
        }
        busy = {a: ks for a, ks in busy.items() if ks and a in pids}
        if busy:
            addr, keys = sorted(busy.items())[0]
            # the task is on `addr`: watch the store closely, without scheduler round trips
            while not running.done():
                if under_way(cube):
                    os.kill(pids[addr], signal.SIGKILL)
                    return {
                        "worker": addr,
                        "keys": keys,
                        "complete_steps": _complete_steps(cube),
                        "at_s": round(time.monotonic() - t0, 2),
                    }
                time.sleep(0.001)
        time.sleep(0.01)
    return {}


@pytest.mark.parametrize("moment", list(WORKER_KILL_MOMENTS))
def test_a_worker_killed_during_a_backfill_task_changes_no_byte(
    moment, backfill_cluster, stac_api_small
):
    from geoproc.backfill import run_backfill

    cluster, client, out, clean = backfill_cluster
    victim, under_way = WORKER_KILL_MOMENTS[moment]
    cube = out / "cubes" / f"{TILE}.zarr"
    hit: dict = {}
    for _ in range(3):  # the moment passed unseen: run again
        shutil.rmtree(out, ignore_errors=True)
        client.wait_for_workers(2, timeout=120)  # the nanny replaced an earlier victim
        pids_before = client.run(os.getpid)
        with ThreadPoolExecutor(1) as pool:
            t0 = time.monotonic()
            running = pool.submit(
                run_backfill, _backfill_request(stac_api_small, out), period_months=2,
                dask_address=cluster.scheduler_address,
            )  # fmt: skip
            hit = _kill_worker_when(client, victim, under_way, cube, running)
            report = running.result(timeout=600)
            seconds = time.monotonic() - t0
        if hit:
            break
    assert hit, f"never saw a {victim} task at moment {moment}"
    client.wait_for_workers(2, timeout=120)
    assert set(client.run(os.getpid).values()).isdisjoint({pids_before[hit["worker"]]})

    print(
        f"\nworker loss ({moment}): killed {hit}; backfill with the kill {seconds:.1f} s; "
        f"units {report['units']}; products "
        f"{ {k: v['status'] for k, v in report['products'].items()} }; failed {report['failed']}"
    )
    assert report["status"] == "complete", report["failed"]
    assert report["units"]["failed"] == report["units"]["blocked"] == 0
    assert {k: v["status"] for k, v in report["products"].items()} == {
        f"flood/{TILE}": "written",
        f"lst/{TILE}": "written",
    }
    after = kill_points.tree_digest(out)
    changed = sorted(k for k in set(clean) | set(after) if clean.get(k) != after.get(k))
    assert changed == [], changed[:10]


def test_a_backfill_killed_between_cube_template_and_consolidation_reruns_to_clean_bytes(
    backfill_cluster, stac_api_small
):
    """Process loss in the window the worker-loss test found: the rerun must not fail the unit."""
    import subprocess

    _, _, out, clean = backfill_cluster  # same request and out path as the clean backfill
    cube = out / "cubes" / f"{TILE}.zarr"
    argv = [
        sys.executable, "-m", "geoproc", "backfill", "flood,lst", "--catalog", stac_api_small,
        "--aoi", TILE, "--tile-size", "128", "--start", "2024-05-01", "--end", "2024-08-31",
        "--period-months", "2", "--out", str(out), "--workers", "1", "--no-publish",
    ]  # fmt: skip
    env = {**os.environ, "GEOPROC_ALLOW_LOCAL_ASSETS": "true"}
    outcome = None
    for _ in range(3):  # the window passed unseen: run again
        shutil.rmtree(out, ignore_errors=True)
        run = kill_points.start(argv, cwd=ROOT, env=env)
        outcome = kill_points.kill_when(run, lambda r: _laid_out_not_consolidated(cube))
        if outcome.killed and _laid_out_not_consolidated(cube):
            break
    assert outcome.killed and _laid_out_not_consolidated(cube), outcome

    t0 = time.monotonic()
    rerun = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)
    print(
        f"\nbackfill killed after {outcome.seconds:.1f} s between template and consolidation; "
        f"rerun rc {rerun.returncode} in {time.monotonic() - t0:.1f} s: {rerun.stdout[-300:]}"
    )
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    after = kill_points.tree_digest(out)
    changed = sorted(k for k in set(clean) | set(after) if clean.get(k) != after.get(k))
    assert changed == [], changed[:10]
