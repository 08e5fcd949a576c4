"""`geoproc bench backfill`: the same backfill on a LocalCluster of 1 and of N workers, side by side.

Why: a backfill parallelises over tiles (a tile's periods must append in date order), so
the honest question is how close N workers get to N times one worker on the same units,
and what the scheduling costs. Each repeat runs every worker count once into a fresh
output folder, alternating the order between repeats so that load drift on a shared
machine hits both alike; the table shows the median wall time per worker count and the
speed-up of the median. The machine (CPUs, memory) and the 1-minute load average
sampled around every run are printed, because on a shared 2-core machine the load
decides the ratio as much as the code does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("backfill", help="backfill wall time on 1 vs N Dask workers")
    parser.add_argument(
        "--archive",
        required=True,
        help="folder made by `geoproc sample create` (medium for the reference figures)",
    )
    parser.add_argument(
        "--workers", default="1,2", help="comma-separated worker counts (default 1,2)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per worker count (median)")
    parser.add_argument(
        "--period-months", type=int, default=3, help="months per work unit (default 3)"
    )
    parser.add_argument("--start", default=None, help="first date (default: the archive's)")
    parser.add_argument("--end", default=None, help="last date (default: the archive's)")
    parser.add_argument(
        "--products",
        default="",
        help="also run these products after the units (default: cubes only)",
    )
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.set_defaults(func=run)


def machine_info() -> dict:
    """What the figures were measured on."""
    import dask
    import distributed
    import psutil

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "dask": dask.__version__,
        "distributed": distributed.__version__,
    }


def _worker_counts(text: str) -> list[int]:
    from geoproc.errors import UsageError

    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise UsageError(f"--workers {text!r}: pass worker counts of 1 or more, e.g. 1,2.")
    return counts


def run(args: argparse.Namespace) -> int:
    import logging

    import distributed  # noqa: F401 - imported first so its loggers can be quietened

    from geoproc.backfill import plan_units, run_backfill
    from geoproc.dev.stac_server import serve_archive
    from geoproc.errors import UsageError
    from geoproc.request import RunRequest

    counts = _worker_counts(args.workers)
    if args.repeats < 1:
        raise UsageError(f"--repeats {args.repeats} must be 1 or more.")
    archive = Path(args.archive)
    aoi = archive / "aoi.geojson"
    if not aoi.is_file():
        raise UsageError(
            f"--archive {archive} holds no aoi.geojson: pass a `geoproc sample create` folder."
        )
    props = json.loads(aoi.read_text())["features"][0]["properties"]
    logging.getLogger("distributed").setLevel(logging.ERROR)
    # the archive is ours and served on loopback: let its file hrefs be read (workers
    # inherit the environment when the cluster spawns them)
    os.environ["GEOPROC_ALLOW_LOCAL_ASSETS"] = "true"
    warnings.simplefilter("ignore")
    work = Path(tempfile.mkdtemp(prefix="geoproc-bench-backfill-"))
    runs: list[dict] = []
    try:
        with serve_archive(archive) as url:
            request_for = lambda out: RunRequest.create(  # noqa: E731
                products=args.products or "flood", aoi=str(aoi),
                start=args.start or props.get("start", "2024-01-01"),
                end=args.end or props.get("end", "2024-12-31"), catalog=url, out=str(out),
                options={"tile_size_px": int(props.get("tile_size_px", 1024))},
            )  # fmt: skip
            tiles, units = plan_units(request_for(work / "plan"), period_months=args.period_months)
            print(
                f"archive {archive}  tiles {len(tiles)} x {props.get('tile_size_px')} px  "
                f"units {len(units)} ({args.period_months}-month periods)  "
                f"products {args.products or 'none (cubes only)'}",
                flush=True,
            )
            for repeat in range(args.repeats):
                order = counts if repeat % 2 == 0 else list(reversed(counts))
                for n in order:
                    out = work / f"r{repeat}-w{n}"
                    load_before = os.getloadavg()[0]
                    t0 = time.perf_counter()
                    report = run_backfill(
                        request_for(out), period_months=args.period_months, workers=n,
                        run_products=bool(args.products), publish_outputs=False,
                    )  # fmt: skip
                    seconds = time.perf_counter() - t0
                    load = (load_before + os.getloadavg()[0]) / 2
                    runs.append(
                        {"workers": n, "repeat": repeat, "seconds": seconds, "load1": load,
                         "status": report["status"], "units": report["units"]}
                    )  # fmt: skip
                    print(
                        f"  repeat {repeat + 1}/{args.repeats}  workers {n}: {seconds:7.1f} s  "
                        f"load {load:4.1f}  {report['status']}",
                        flush=True,
                    )
                    shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = summarise(runs, counts)
    figures["machine"] = machine_info()
    print()
    print(format_table(figures))
    if args.json:
        Path(args.json).write_text(json.dumps({**figures, "runs": runs}, indent=2))
    return 0


def summarise(runs: list[dict], counts: list[int]) -> dict:
    """Median wall time and mean load per worker count; speed-up against the first count."""
    rows = {}
    for n in counts:
        mine = [r for r in runs if r["workers"] == n]
        rows[n] = {
            "median_s": statistics.median(r["seconds"] for r in mine),
            "min_s": min(r["seconds"] for r in mine),
            "max_s": max(r["seconds"] for r in mine),
            "load1_mean": statistics.fmean(r["load1"] for r in mine),
            "repeats": len(mine),
        }
    base = rows[counts[0]]["median_s"]
    for n in counts:
        rows[n]["speedup"] = base / rows[n]["median_s"]
    return {"rows": rows, "baseline_workers": counts[0]}


def format_table(figures: dict) -> str:
    m = figures["machine"]
    lines = [
        f"machine: {m['logical_cpus']} logical CPUs, {m['memory_gib']} GiB, {m['platform']}, "
        f"Python {m['python']}, dask {m['dask']}",
        "| workers | median s | min-max s | speed-up vs "
        f"{figures['baseline_workers']} | load avg (1 min) | repeats |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for n, r in figures["rows"].items():
        lines.append(
            f"| {n} | {r['median_s']:.1f} | {r['min_s']:.1f}-{r['max_s']:.1f} | "
            f"{r['speedup']:.2f} | {r['load1_mean']:.1f} | {r['repeats']} |"
        )
    return "\n".join(lines)
