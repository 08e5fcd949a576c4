"""End to end on the local stack: deploy the regional flow, trigger it through the Prefect API,
and read the results where they must land (Dask scheduler counters, the S3 bucket, its STAC).

Every step uses the commands a user types (`geoproc stack up`, `geoproc deploy regional`,
`prefect deployment run`, `geoproc stack down`) in subprocesses, so the stack's processes
are nobody's children here, exactly as on a developer's machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.paths import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = REPO_ROOT
BIN = Path(sys.executable).parent
PRODUCTS = ("flood", "lst", "canopy")
START, END = "2024-06-01", "2024-06-30"


def _run(argv: list[str], env: dict[str, str], *, timeout: float = 300) -> str:
    out = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert out.returncode == 0, (
        f"{' '.join(argv[:3])} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    )
    return out.stdout


def _stack_processes(stack_id: str) -> list[int]:
    import psutil

    found = []
    for proc in psutil.process_iter(["status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if proc.environ().get("GEOPROC_STACK_ID") == stack_id:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def _wait_for_flow_run(api: str, flow_run_id: str, *, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"{api}/flow_runs/{flow_run_id}", timeout=10) as resp:
            run = json.loads(resp.read())
        if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        assert time.monotonic() < deadline, f"flow run still {run['state_type']} after {timeout} s"
        time.sleep(2)


@pytest.fixture
def stack(sample_archive_small, tmp_path):
    """`geoproc stack up` on free ports; always `geoproc stack down`, and nothing may be left."""
    state_dir = tmp_path / "stack"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GEOPROC_", "AWS_"))
    }
    env.update(
        PATH=f"{BIN}:{env.get('PATH', '')}",
        GEOPROC_STACK_DIR=str(state_dir),
        GEOPROC_STACK_ARCHIVE=str(sample_archive_small),
        GEOPROC_STACK_BUCKET="geoproc-e2e",
        GEOPROC_STACK_WORK_POOL="geoproc-e2e",
        GEOPROC_STACK_TIMEOUT_S="240",
        **{
            f"GEOPROC_STACK_{p}_PORT": "0"
            for p in ("PREFECT", "DASK", "DASK_DASHBOARD", "S3", "STAC")
        },
    )
    started = time.monotonic()
    try:
        _run([str(BIN / "geoproc"), "stack", "up"], env, timeout=420)
        up_s = time.monotonic() - started
        state = json.loads((state_dir / "stack.json").read_text())
        yield {"env": {**env, **state["env"]}, "state": state, "dir": state_dir, "up_s": up_s}
    finally:
        state_file = state_dir / "stack.json"
        stack_id = json.loads(state_file.read_text())["id"] if state_file.exists() else None
        subprocess.run([str(BIN / "geoproc"), "stack", "down"], cwd=ROOT, env=env, timeout=180)
        if stack_id:
            assert _stack_processes(stack_id) == []


def test_scheduled_deployment_runs_on_dask_and_publishes_to_s3(
    stack, sample_archive_small, monkeypatch
):
    from geoproc import storage
    from geoproc.dask_exec import executed_task_counts, scheduler_client
    from geoproc.pipeline import plan
    from geoproc.request import RunRequest
    from geoproc.stac_schemas import validate_stac

    env, urls = stack["env"], stack["state"]["urls"]
    aoi_props = json.loads((sample_archive_small / "aoi.geojson").read_text())["features"][0][
        "properties"
    ]
    tile_size = aoi_props["tile_size_px"]
    whole = RunRequest.create(
        products=",".join(PRODUCTS), aoi=str(sample_archive_small / "aoi.geojson"), start=START,
        end=END, catalog=urls["stac_api"], out="/tmp/unused", options={"tile_size_px": tile_size},
    )  # fmt: skip
    tile = plan(whole)[0].id
    out = f"s3://geoproc-e2e/e2e/{tile}"

    # 1. deploy as a user does, from the project root, onto the stack's process work pool
    _run(
        [
            str(BIN / "geoproc"), "deploy", "regional", "--cron", "0 0 1 1 *", "--name", "e2e",
            "--work-pool", "geoproc-e2e", "--catalog", urls["stac_api"], "--aoi", tile,
            "--start", START, "--end", END, "--out", out, "--tile-size", str(tile_size),
        ],
        env,
    )  # fmt: skip
    # 2. trigger through the Prefect API, as `prefect deployment run` does
    triggered = _run(
        [
            str(BIN / "prefect"), "deployment", "run", "regional-mapping/e2e",
            "--param", f"dask_address={urls['dask_scheduler']}",
        ],
        env,
    )  # fmt: skip
    flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", triggered).group(1)
    t0 = time.monotonic()
    run = _wait_for_flow_run(urls["prefect_api"], flow_run_id, timeout=300)
    run_s = time.monotonic() - t0
    worker_log = (stack["dir"] / "logs" / "prefect-worker.log").read_text(errors="replace")
    assert run["state_type"] == "COMPLETED", f"{run['state_name']}:\n{worker_log[-4000:]}"

    # 3. the Dask scheduler executed the cube build and one run per product, on its workers
    counts = executed_task_counts(urls["dask_scheduler"])
    assert counts == {
        "geoproc-build-cube": 1,
        **{f"geoproc-run-product-{p}": 1 for p in PRODUCTS},
    }
    with scheduler_client(urls["dask_scheduler"]) as client:
        # both registered at `up` (its health check); a worker lost mid-run is survivable, as
        # Dask reruns its task elsewhere, so only ask that the run ended with workers left
        workers = client.scheduler_info()["workers"].values()
        assert {w["name"] for w in workers} <= {"dask-worker-1", "dask-worker-2"} and workers
        resident_mib = sorted(w["metrics"]["memory"] / 2**20 for w in workers)

    # 4. the outputs are in the bucket, and agree with each other
    for key in (
        "GEOPROC_S3_ENDPOINT_URL",
        "GEOPROC_S3_ACCESS_KEY_ID",
        "GEOPROC_S3_SECRET_ACCESS_KEY",
    ):
        monkeypatch.setenv(key, env[key])
    fs, root = storage.filesystem(out)
    (report_path,) = fs.glob(f"{root}/runs/*/report.json")
    report = json.loads(fs.cat(report_path))
    cube = report["cubes"][tile]
    assert cube["steps_total"] == len(cube["steps_written"]) > 0
    assert {k: v["status"] for k, v in report["products"].items()} == {
        f"{p}/{tile}": "written" for p in PRODUCTS
    }

    catalog = json.loads(fs.cat(f"{root}/stac/catalog.json"))
    validate_stac(catalog)
    for product in PRODUCTS:
        collection = json.loads(fs.cat(f"{root}/stac/{product}/collection.json"))
        validate_stac(collection)
        items = [json.loads(fs.cat(p)) for p in fs.glob(f"{root}/stac/{product}/*/*.json")]
        assert len(items) == report["products"][f"{product}/{tile}"]["steps"]
        for item in items:
            validate_stac(item)
    assert len(items) >= 1

    # one published COG holds exactly the product store's values for its date
    import rasterio
    import xarray as xr

    flood_items = sorted(
        (json.loads(fs.cat(p)) for p in fs.glob(f"{root}/stac/flood/*/*.json")),
        key=lambda i: i["properties"]["datetime"],
    )
    assert len(flood_items) == cube["steps_total"]
    cogs = sorted(fs.glob(f"{root}/cog/flood/{tile}/*/*.tif"))
    assert cogs, "no flood COGs in the bucket"
    *_, label, name = cogs[0].split("/")
    product = xr.open_zarr(
        storage.zarr_store(f"{out}/products/flood/{tile}.zarr", read_only=True),
        mask_and_scale=False,
    )
    labels = [np.datetime_as_string(t, unit="s").replace(":", "") for t in product.time.values]
    expected = product[name.removesuffix(".tif")].isel(time=labels.index(label)).values
    with rasterio.MemoryFile(fs.cat(cogs[0])) as mem, mem.open() as src:
        np.testing.assert_array_equal(src.read(1), expected)
        zone, hemisphere = int(tile[:2]), tile[2]
        assert src.crs.to_epsg() == (32600 if hemisphere == "N" else 32700) + zone

    print(
        f"\nstack up {stack['up_s']:.1f} s, flow run {run_s:.1f} s, "
        f"dask worker RSS {resident_mib[0]:.0f}-{resident_mib[-1]:.0f} MiB"
    )
