"""`geoproc bench products`: the blocked product stage against today's whole-tile path.

Cubes are generated here with the medium sample archive's shape per year (61 Sentinel-1,
51 S30 and 26 L30 dates, HLS bands packed as int16 with scale factors, Fmask, chunks of
1 x 512 x 512) so no catalog is needed. Every measurement runs in a fresh child process,
so its peak RSS (``VmHWM``, `geoproc.dev.bench._peak_memory`) belongs to one mode and one cube only:

- ``tile``   today's path, ``module.run(inputs.load())`` (``--compare-size``, one year);
- ``block``  the blocked stage on the same cube (throughput ratio = tile time / block time);
- peak of the blocked stage on ``--size`` over one year (target <= 1.5 GiB), the memory
  ratios 2 years / 1 year (at ``--size``) and ``--big-size`` / ``--small-size``;
- incremental: a store made from the one-year cube, then the cube with one more date: the
  rerun's time over the full run's.

Without ``--sar`` the cubes hold no Sentinel-1 bands, so flood runs blocked; with it,
flood's scene-wide SAR threshold keeps it on the whole-tile path (see
`geoproc.products.DECLARED_BLOCKING`) and the bench says so.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_MiB = 1024 * 1024
PLATFORMS_PER_YEAR = {"S1": 61, "S30": 51, "L30": 26}
"""Dates per year and platform in the medium sample archive's cubes."""
OPTICAL = ("blue", "green", "red", "nir08", "swir16", "swir22")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("products", help="blocked product stage vs whole tile: memory, throughput")
    p.add_argument("--products", default="flood,lst,canopy", help="comma-separated products")
    p.add_argument("--size", type=int, default=1024, help="tile side (px) for the peak")
    p.add_argument("--compare-size", type=int, default=512, help="tile side for tile vs block")
    p.add_argument("--small-size", type=int, default=512, help="small tile of the size ratio")
    p.add_argument("--big-size", type=int, default=2048, help="big tile of the size ratio")
    p.add_argument(
        "--year-fraction",
        type=float,
        default=1.0,
        help="scale the dates per year (e.g. 0.25 for a quick run; the table says so)",
    )
    p.add_argument("--budget-mb", type=int, default=None, help="block memory budget (MiB)")
    p.add_argument("--sar", action="store_true", help="include Sentinel-1 vv/vh bands")
    p.add_argument("--workdir", default=None, help="where to write cubes (default: temp dir)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from geoproc.errors import UsageError
    from geoproc.inference.product_stage import DEFAULT_BLOCK_BYTES

    products = [p.strip() for p in args.products.split(",") if p.strip()]
    if not products or not 0 < args.year_fraction <= 4:
        raise UsageError("--products must name products and --year-fraction lie in (0, 4]")
    budget = (args.budget_mb * _MiB) if args.budget_mb else DEFAULT_BLOCK_BYTES
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)

        def cube(size: int, years: int, extra: int = 0) -> str:
            path = work / f"cube-{size}-{years}y-{extra}.zarr"
            if not path.exists():
                _child(
                    "cube", str(path), size, years, args.year_fraction, args.sar, extra, budget=0
                )
            return str(path)

        def measure(key: str, label: str, cube_url: str, blocking: str | None, out: str):
            rows[key] = {
                "label": label,
                **_child("run", cube_url, str(work / out), products, blocking, budget=budget),
            }
            print(_row(label, rows[key]), flush=True)

        c = cube(args.compare_size, 1)
        size, small, big = args.size, args.small_size, args.big_size
        measure("tile", f"tile {args.compare_size}² 1y", c, "tile", "tile")
        measure("block", f"block {args.compare_size}² 1y", c, None, "block")
        measure("peak", f"block {size}² 1y", cube(size, 1), None, "inc")
        measure("years", f"block {size}² 2y", cube(size, 2), None, "years")
        measure("small", f"block {small}² 1y", cube(small, 1), None, "small")
        measure("big", f"block {big}² 1y", cube(big, 1), None, "big")
        measure("inc", f"block {size}² 1y +1 date", cube(size, 1, extra=1), None, "inc")

    peak = rows["peak"]["peak_mib"]
    ratio_years = rows["years"]["peak_mib"] / peak
    ratio_size = rows["big"]["peak_mib"] / rows["small"]["peak_mib"]
    throughput = _product_seconds(rows["tile"]) / _product_seconds(rows["block"])
    incremental = _product_seconds(rows["inc"]) / _product_seconds(rows["peak"])
    figures = {
        "rows": rows,
        "year_fraction": args.year_fraction,
        "budget_mib": budget / _MiB,
        "peak_mib": peak,
        "memory_ratio_years": ratio_years,
        "memory_ratio_size": ratio_size,
        "throughput_ratio": throughput,
        "incremental_ratio": incremental,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    print(
        f"memory ratios: 2y/1y {ratio_years:.2f}, {args.big_size}²/{args.small_size}² {ratio_size:.2f}"
        f" (dates per year x {args.year_fraction}, block budget {budget / _MiB:.0f} MiB)"
    )
    print(
        f"bench products: peak {peak:.0f} MiB, memory ratio {max(ratio_years, ratio_size):.2f}, "
        f"throughput ratio {throughput:.2f}, incremental ratio {incremental:.2f}"
    )
    return 0


def _product_seconds(row: dict) -> float:
    """Seconds inside the product runs (interpreter start and imports left out)."""
    return sum(v["seconds"] for v in row["products"].values())


def _row(name: str, r: dict) -> str:
    per = ", ".join(
        f"{p} {v['mode']} {v['status']} {v['seconds']:.1f}s" for p, v in r["products"].items()
    )
    return f"{name:<24} {r['seconds']:7.1f} s  peak {r['peak_mib']:7.0f} MiB  ({per})"


def _child(kind: str, *args, budget: int) -> dict:
    """Run `kind` in a fresh interpreter; its JSON answer includes its peak RSS."""
    payload = json.dumps({"kind": kind, "args": args, "budget": budget})
    proc = subprocess.run(
        [sys.executable, "-m", "geoproc.dev.bench.products", payload],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench child {kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _child_main(payload: str) -> None:
    import warnings

    from geoproc.dev.bench._peak_memory import peak_mib

    warnings.simplefilter("ignore")
    job = json.loads(payload)
    t0 = time.perf_counter()
    if job["kind"] == "cube":
        write_cube(*job["args"])
        result: dict = {}
    else:
        from geoproc.product_runner import run_product_on_cube

        cube_url, out, products, blocking = job["args"]
        result = {"products": {}}
        for product in products:
            t1 = time.perf_counter()
            r = run_product_on_cube(
                product,
                cube_url,
                out,
                tile="T",
                blocking=blocking,
                block_memory_bytes=job["budget"],
            )
            result["products"][product] = {
                "mode": r.mode,
                "status": r.status,
                "steps": r.steps,
                "seconds": time.perf_counter() - t1,
            }
    result["seconds"] = time.perf_counter() - t0
    result["peak_mib"] = peak_mib()
    print(json.dumps(result))


def write_cube(
    path: str, size: int, years: int, year_fraction: float, sar: bool, extra: int = 0
) -> None:
    """A cube store of the medium archive's shape: `years` of dates (+ `extra` dates after).

    Written step by step with zarr (one time step's chunks at a time), so generating a big
    cube takes little memory. Values: a smooth landscape with a river, clouds as discs."""
    import dask.array as da
    import numpy as np
    import pandas as pd
    import rioxarray  # noqa: F401
    import xarray as xr
    import zarr

    from geoproc import storage

    per_year = []
    for platform, n in PLATFORMS_PER_YEAR.items():
        per_year += [platform] * max(1, round(n * year_fraction))
    rng = np.random.default_rng(7)
    rng.shuffle(per_year)
    platforms = per_year * years
    platforms += ["L30"] * extra  # a date every product reads
    nt = len(platforms)
    days = 365 * years / (len(per_year) * years)
    times = pd.Timestamp("2024-01-01T10:00") + pd.to_timedelta(np.arange(nt) * days, unit="D")
    chunk = (1, min(512, size), min(512, size))
    bands: dict[str, tuple] = {b: ("i2", 1e-4, 0.0) for b in OPTICAL}
    bands.update({"lwir11": ("i2", 0.01, 273.15), "lwir12": ("i2", 0.01, 273.15)})
    ds = xr.Dataset(
        coords={
            "time": times.values,
            "y": 5_300_000.0 - 30.0 * (np.arange(size) + 0.5),
            "x": 700_000.0 + 30.0 * (np.arange(size) + 0.5),
            "platform": ("time", np.array(platforms, dtype="U3")),
        }
    )
    shape = (nt, size, size)
    for name, (dtype, scale, offset) in bands.items():
        ds[name] = (("time", "y", "x"), da.zeros(shape, dtype, chunks=chunk))
        ds[name].encoding = {
            "chunks": chunk,
            "_FillValue": np.int16(-32768),
            "scale_factor": scale,
            "add_offset": offset,
            "dtype": dtype,
        }
    ds["fmask"] = (("time", "y", "x"), da.zeros(shape, "u1", chunks=chunk))
    ds["fmask"].encoding = {"chunks": chunk, "_FillValue": np.uint8(255)}
    if sar:
        for pol in ("vv", "vh"):
            ds[pol] = (("time", "y", "x"), da.zeros(shape, "f4", chunks=chunk))
            ds[pol].encoding = {"chunks": chunk, "_FillValue": np.float32(np.nan)}
    ds["time_complete"] = ("time", np.ones(nt, bool))
    ds = ds.rio.write_crs("EPSG:32632")
    ds.attrs["geoproc:source_items"] = [[f"item-{t}"] for t in range(nt)]
    ds.attrs["coordinates"] = "spatial_ref"  # as the cube store does: a coordinate on reopen
    store = storage.zarr_store(path)
    ds.to_zarr(store, mode="w", compute=False, consolidated=True, zarr_format=3)
    group = zarr.open_group(store, mode="r+", zarr_format=3)

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    river = np.abs(yy - size / 2 - 0.15 * size * np.sin(xx / (0.2 * size))) < max(3, size / 40)
    land = {
        "blue": 0.04,
        "green": 0.07,
        "red": 0.06,
        "nir08": 0.30,
        "swir16": 0.20,
        "swir22": 0.10,
    }
    water = {
        "blue": 0.05,
        "green": 0.06,
        "red": 0.04,
        "nir08": 0.02,
        "swir16": 0.01,
        "swir22": 0.005,
    }
    texture = 0.02 * np.sin(xx / 17.0) * np.cos(yy / 23.0)
    fill = np.int16(-32768)
    for t, platform in enumerate(platforms):
        season = np.sin(2 * np.pi * (times[t].dayofyear - 100) / 365)
        flooded = river | ((t % 29 == 5) & (np.abs(yy - size / 2) < size / 10))
        cx, cy = rng.uniform(0, size, 2)
        cloud = (yy - cy) ** 2 + (xx - cx) ** 2 < (size / 7) ** 2
        for name, (_dtype, scale, offset) in bands.items():
            if platform == "S1" or (name.startswith("lwir") and platform != "L30"):
                values = np.full((size, size), fill, np.int16)
            elif name.startswith("lwir"):
                kelvin = 288 + 8 * season + 40 * texture - 6 * flooded
                values = np.rint((kelvin - offset) / scale).astype(np.int16)
            else:
                refl = np.where(flooded, water[name], land[name] * (1 + 0.3 * season)) + texture
                values = np.rint(refl / scale).astype(np.int16)
            if platform != "S1":
                values[cloud] = fill
            group[name][t] = values
        fmask = np.where(cloud, 2, 0).astype(np.uint8)
        group["fmask"][t] = np.full((size, size), 255, np.uint8) if platform == "S1" else fmask
        if sar:
            for pol, dark in (("vv", 0.01), ("vh", 0.002)):
                lin = np.where(flooded, dark, 10 * dark * (1 + texture))
                group[pol][t] = lin.astype(np.float32) if platform == "S1" else np.nan


if __name__ == "__main__":
    _child_main(sys.argv[1])
