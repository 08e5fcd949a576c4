"""`geoproc bench timeseries`: a year of point time series from the cube vs its time-chunked copy.

Why: the cube is chunked one date per object (``(1, 512, 512)``), so one pixel's year reads
one object per date; `geoproc rechunk` writes ``(N, S, S)`` chunks so the same year is one
object per point. Both stores are read by the same code (`geoproc.timeseries.points`,
what `geoproc extract` runs), medians of ``--repeat`` rounds in alternating order, on a
one-year cube built on local disk like the cube writer stores it (int16, zstd, crc32c,
chunks (1, 512, 512)). Two workloads: every point in one vectorised read, and one read per
point (an analyst's loop over sites). The last line is
``bench timeseries: speed-up <cube time / copy time>`` for the one-read-per-point workload.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

BANDS = ("red", "nir08")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "timeseries", help="point time series: cube (1 date/chunk) vs time-chunked copy"
    )
    parser.add_argument(
        "--dates", type=int, default=73, help="dates in the year (5-day revisit: 73)"
    )
    parser.add_argument("--size", type=int, default=1024, help="tile side in pixels")
    parser.add_argument("--points", type=int, default=20, help="random points (K)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (median reported)")
    parser.add_argument("--time-chunk", default="all", help="copy's time chunk (number or all)")
    parser.add_argument("--space-chunk", type=int, default=64, help="copy's chunk side in pixels")
    parser.add_argument(
        "--work", default=None, help="local folder for the stores (default: a temp dir)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random points")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from geoproc.dev.bench._timeseries_cube import write_packed_cube
    from geoproc.dev.bench.cube import _PeakRSS
    from geoproc.timeseries.rechunk import parse_time_chunk, rechunk_store

    work = Path(tempfile.mkdtemp(prefix="geoproc-bench-ts-", dir=args.work))
    cube, copy = work / "cube.zarr", work / "copy.zarr"
    try:
        t0 = time.perf_counter()
        write_packed_cube(str(cube), dates=args.dates, ny=args.size, nx=args.size, bands=BANDS)
        build_s = time.perf_counter() - t0
        with _PeakRSS() as mem:
            t0 = time.perf_counter()
            result = rechunk_store(
                str(cube), str(copy), time_chunk=parse_time_chunk(args.time_chunk),
                space_chunk=args.space_chunk,
            )  # fmt: skip
            rechunk_s = time.perf_counter() - t0
        rng = np.random.default_rng(args.seed)
        rows = rng.integers(0, args.size, args.points)
        cols = rng.integers(0, args.size, args.points)
        timings: dict[str, dict[str, list[float]]] = {"one read": {}, "one read per point": {}}
        for k in range(args.repeat):
            order = [("cube", cube), ("copy", copy)][:: 1 if k % 2 == 0 else -1]
            for name, url in order:
                for workload in timings:
                    seconds, values = _read(url, rows, cols, per_point=workload != "one read")
                    timings[workload].setdefault(name, []).append(seconds)
                    if k == 0:
                        _check_same(values, workload, name)
        print(
            f"cube: {args.dates} dates x {args.size}² px x {len(BANDS)} variables (int16), chunks "
            f"(1, 512, 512), {_mib(cube):.0f} MiB on disk, built in {build_s:.1f} s"
        )
        print(
            f"copy: chunks ({result.time_chunk}, {result.space_chunk}, {result.space_chunk}) Zarr v2 "
            f"Blosc, {_mib(copy):.0f} MiB; rechunk {rechunk_s:.1f} s, peak RSS +{mem.mib:.0f} MiB"
        )
        print(f"{args.points} random points, each its full series of both variables; "
              f"median of {args.repeat} rounds, alternating order")  # fmt: skip
        print(f"{'workload':28s} {'cube s':>9s} {'copy s':>9s} {'speed-up':>9s}")
        ratios = {}
        for workload, per in timings.items():
            c, p = statistics.median(per["cube"]), statistics.median(per["copy"])
            ratios[workload] = c / p
            print(f"{workload:28s} {c:9.3f} {p:9.3f} {c / p:9.1f}")
        print(f"bench timeseries: speed-up {ratios['one read per point']:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


_SEEN: dict[str, np.ndarray] = {}


def _check_same(values: np.ndarray, workload: str, name: str) -> None:
    """Both stores must give the same numbers (NaN where masked), or the timing means nothing."""
    if workload in _SEEN:
        np.testing.assert_array_equal(values, _SEEN[workload], err_msg=f"{name} differs")
    else:
        _SEEN[workload] = values


def _read(
    url: Path, rows: np.ndarray, cols: np.ndarray, *, per_point: bool
) -> tuple[float, np.ndarray]:
    """Seconds to open the store and read every point's series; the values read."""
    from geoproc.timeseries.points import read_point_series
    from geoproc.timeseries.store import open_series_store

    t0 = time.perf_counter()
    store = open_series_store(str(url), option="--cube", cube=True, variables=list(BANDS))
    if per_point:
        parts = [
            read_point_series(store, rows[i : i + 1], cols[i : i + 1]) for i in range(len(rows))
        ]
        values = np.stack([np.concatenate([p[b] for p in parts], axis=1) for b in BANDS])
    else:
        got = read_point_series(store, rows, cols)
        values = np.stack([got[b] for b in BANDS])
    return time.perf_counter() - t0, values


def _mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20
