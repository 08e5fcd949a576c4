"""`geoproc bench cube --granules full`: four whole processes on full-size granules, side by side.

Why whole processes: a user pays interpreter and import start-up with every command, and
stackstac's and odc-stac's thread pools and memory show only in their own process. Each
method runs as a child (wall time from `os.wait4`, peak RSS from its own `VmHWM`); rounds alternate the
order so a warming page cache or a busy neighbour does not favour one method, and the
table reports medians. The peers' children import only their own library (not geoproc),
so their start-up is theirs alone.

Methods, same items, grid (the tiles' UTM grid at 30 m) and volume:
(a) rasterio window decode floor: every asset's window read once, 1 thread, time of the
    read loop only (no start-up, no writing: the floor a builder cannot beat);
(b) ``stackstac.stack(...).to_zarr(...)``, dask's default threaded scheduler;
(c) ``odc.stac.load(...).to_zarr(...)``, same;
(d) ``geoproc cube build`` as a CLI process: search, Fmask masking, scaling,
    harmonisation, packing, crash-safe store with completion markers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from geoproc.dev.bench._full_granules import (
    COLLECTION,
    QA_ASSET,
    REFLECTANCE_ASSETS,
    ensure_granules,
)
from geoproc.dev.bench._peak_memory import HWM_FILE_VARIABLE, child_prelude, read_child_peak

BANDS = ("blue", "green", "red", "nir08", "swir16", "swir22")
ASSETS = (*REFLECTANCE_ASSETS, QA_ASSET)

_FLOOR = """
import json, sys, time
import rasterio
from rasterio.windows import Window, from_bounds
spec = json.load(open(sys.argv[1]))
t0 = time.perf_counter()
with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", GDAL_NUM_THREADS="1"):
    for tile in spec["tiles"]:
        for path in spec["items"]:
            item = json.load(open(path))
            for key in spec["assets"]:
                with rasterio.open(item["assets"][key]["href"]) as src:
                    w = from_bounds(*tile["bounds"], transform=src.transform).round_offsets().round_lengths()
                    w = w.intersection(Window(0, 0, src.width, src.height))
                    src.read(1, window=w)
print("READ_SECONDS", time.perf_counter() - t0)
"""

_STACKSTAC = """
import json, sys
import numpy as np, pystac, stackstac
from zarr.codecs import ZstdCodec
spec = json.load(open(sys.argv[1]))
items = [pystac.Item.from_file(p) for p in spec["items"]]
for tile in spec["tiles"]:
    arr = stackstac.stack(items, assets=spec["assets"], epsg=tile["epsg"], resolution=tile["resolution"],
                          bounds=tile["bounds"], chunksize=(1, 1, 512, 512), dtype="int16",
                          fill_value=np.int16(-9999), rescale=False)
    ds = arr.reset_coords(drop=True).to_dataset(dim="band")
    ds.attrs = {}
    enc = {v: {"compressors": [ZstdCodec(level=1)]} for v in ds.data_vars}
    ds.to_zarr(spec["out"] + "/" + tile["id"] + ".zarr", mode="w", zarr_format=3, consolidated=True,
               encoding=enc)
"""

_ODC = """
import json, sys
import odc.stac, pystac
from zarr.codecs import ZstdCodec
from odc.geo.geobox import GeoBox
spec = json.load(open(sys.argv[1]))
items = [pystac.Item.from_file(p) for p in spec["items"]]
for tile in spec["tiles"]:
    gbox = GeoBox.from_bbox(tile["bounds"], crs=f"EPSG:{tile['epsg']}", resolution=tile["resolution"])
    ds = odc.stac.load(items, bands=spec["assets"], geobox=gbox,
                       chunks={"time": 1, "y": 512, "x": 512}, groupby="id")
    enc = {v: {"compressors": [ZstdCodec(level=1)]} for v in ds.data_vars}
    ds.to_zarr(spec["out"] + "/" + tile["id"] + ".zarr", mode="w", zarr_format=3, consolidated=True,
               encoding=enc)
"""

METHODS = {
    "(a) rasterio window decode floor": "floor",
    "(b) stackstac.stack().to_zarr()": "stackstac",
    "(c) odc.stac.load().to_zarr()": "odc",
    "(d) geoproc cube build (process)": "geoproc",
}


def run_full(args: argparse.Namespace) -> int:
    from geoproc.grid import parse_tile_id

    cache = Path(args.cache or Path.home() / ".cache" / "geoproc" / "bench")
    t0 = time.perf_counter()
    folder = ensure_granules(cache, size_px=args.granule_px, dates=args.dates)
    generated = time.perf_counter() - t0
    aoi = json.loads((folder / "aoi.json").read_text())
    items = sorted(str(p) for p in (folder / "items").glob("*.json"))
    tiles = [
        parse_tile_id(t, tile_size_px=aoi["tile_size_px"], resolution=aoi["resolution"])
        for t in aoi["tiles"]
    ]
    work = Path(tempfile.mkdtemp(prefix="geoproc-bench-full-"))
    spec = {
        "items": items,
        "assets": list(ASSETS),
        "tiles": [
            {"id": t.id, "epsg": t.epsg, "resolution": t.resolution, "bounds": list(t.bounds)}
            for t in tiles
        ],
    }
    names = list(METHODS)
    wall: dict[str, list[float]] = {n: [] for n in names}
    rss: dict[str, list[float]] = {n: [] for n in names}
    try:
        for r in range(args.repeat):
            order = names[r % len(names) :] + names[: r % len(names)]
            if r % 2:
                order.reverse()
            for name in order:
                out = work / f"{METHODS[name]}-{r}"
                seconds, peak_mib = _run_method(METHODS[name], spec, aoi, folder, out)
                wall[name].append(seconds)
                rss[name].append(peak_mib)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mpx = len(tiles) * len(items) * len(ASSETS) * aoi["tile_size_px"] ** 2 / 1e6
    print(
        f"granules {folder} ({len(items)} dates x {len(ASSETS)} COGs, {args.granule_px}² px, "
        f"int16 deflate, 512² blocks; cached, generated in {generated:.0f} s)"
    )
    print(
        f"tiles {', '.join(aoi['tiles'])} (inside the granule, across its east edge) x "
        f"{aoi['tile_size_px']}² px; volume {mpx:.0f} Mpx; {args.repeat} rounds, alternating "
        f"order, medians; {os.cpu_count()} CPUs"
    )
    print(f"{'method':36s} {'seconds':>8s} {'Mpx/s':>7s} {'peak RSS MiB':>13s}  rounds")
    med = {n: statistics.median(wall[n]) for n in names}
    for n in names:
        rounds = " ".join(f"{v:.1f}" for v in wall[n])
        print(f"{n:36s} {med[n]:8.2f} {mpx / med[n]:7.1f} {max(rss[n]):13.0f}  {rounds}")
    ours = med["(d) geoproc cube build (process)"]
    rss_gap = max(rss["(d) geoproc cube build (process)"]) - max(
        rss["(b) stackstac.stack().to_zarr()"]
    )
    print(f"geoproc peak RSS - stackstac peak RSS: {rss_gap:+.0f} MiB (target <= +200)")
    print(f"geoproc/odc-stac speed {med['(c) odc.stac.load().to_zarr()'] / ours:.2f}")
    print(
        f"bench cube: geoproc/stackstac speed "
        f"{med['(b) stackstac.stack().to_zarr()'] / ours:.2f}, "
        f"geoproc/floor {med['(a) rasterio window decode floor'] / ours:.2f}"
    )
    return 0


def _run_method(method: str, spec: dict, aoi: dict, folder: Path, out: Path) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of one method as a child process; the floor reports its reads."""
    out.mkdir(parents=True)
    spec_path = out / "spec.json"
    spec_path.write_text(json.dumps({**spec, "out": str(out / "store")}))
    py = [sys.executable, "-W", "ignore"]
    hwm_file = out / "peak_mib.txt"
    if method == "geoproc":
        run_cli = "import runpy, sys; sys.argv[0] = 'geoproc'; runpy.run_module('geoproc', run_name='__main__')"
        cmd = [
            *py, "-c", child_prelude() + run_cli, "cube", "build", "--catalog", str(folder / "items"),
            "--collections", COLLECTION, "--aoi", ",".join(aoi["tiles"]),
            "--start", aoi["start"], "--end", aoi["end"], "--out", str(out / "store"),
            "--tile-size", str(aoi["tile_size_px"]), "--resolution", str(aoi["resolution"]),
            "--bands", ",".join(BANDS), "--max-cloud-cover", "100",
            "--record", str(out / "record.json"),
        ]  # fmt: skip
    else:
        code = {"floor": _FLOOR, "stackstac": _STACKSTAC, "odc": _ODC}[method]
        cmd = [*py, "-c", child_prelude() + code, str(spec_path)]
    log_path = out / "log.txt"
    with open(log_path, "wb") as log:
        t0 = time.perf_counter()
        env = {**os.environ, HWM_FILE_VARIABLE: str(hwm_file)}
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    text = log_path.read_text(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"bench method {method} failed ({proc.returncode}):\n{text[-2000:]}")
    if method == "floor":
        seconds = float(text.split("READ_SECONDS")[-1].split()[0])
    if method == "geoproc":
        record = json.loads((out / "record.json").read_text())
        written = sum(len(t.get("steps_written", [])) for t in record["tiles"].values())
        expected = len(spec["items"]) * len(spec["tiles"])
        if written != expected:
            raise RuntimeError(f"geoproc wrote {written} steps, expected {expected}")
    # wait4's ru_maxrss keeps this parent's RSS at the fork (see peak_memory): a fallback only
    return seconds, read_child_peak(hwm_file, usage.ru_maxrss / 1024)
