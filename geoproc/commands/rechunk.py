"""`geoproc rechunk`: a time-chunked copy of a cube or product store, kept up to date."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "rechunk",
        help="copy a cube or product store chunked along time, for fast point time series",
        description="Write (or extend) a copy chunked (N, S, S) so one pixel's series is one "
        "object per N dates. Resumable (a killed copy, rerun, gives the same bytes) and "
        "incremental (a rerun after the source gained dates appends only those). The copy "
        "is Zarr v2 that GDAL and xarray open; cubes contribute their complete dates only.",
    )
    parser.add_argument(
        "url", help="the source store (OUT/cubes/TILE.zarr or OUT/products/P/TILE.zarr)"
    )
    parser.add_argument(
        "--time-chunk", required=True,
        help="dates per chunk: a number (e.g. 365) or 'all' (the whole series at the first copy)",
    )  # fmt: skip
    parser.add_argument("--space-chunk", type=int, default=None,
                        help="pixels per chunk side (default 64: a point reads one small chunk; up to 256 for fewer objects)")  # fmt: skip
    parser.add_argument("--out", required=True, help="where the copy goes (local or s3://)")
    parser.set_defaults(func=run_rechunk)


def run_rechunk(args: argparse.Namespace) -> int:
    import json
    import sys
    from dataclasses import asdict

    from geoproc.timeseries.rechunk import DEFAULT_SPACE_CHUNK, parse_time_chunk, rechunk_store

    result = rechunk_store(
        args.url,
        args.out,
        time_chunk=parse_time_chunk(args.time_chunk),
        space_chunk=DEFAULT_SPACE_CHUNK if args.space_chunk is None else args.space_chunk,
    )
    print(json.dumps(asdict(result), indent=2))
    print(
        f"rechunk: {result.status}: {result.dates_before} -> {result.dates_after} dates, "
        f"chunks ({result.time_chunk}, {result.space_chunk}, {result.space_chunk}), "
        f"{result.windows_written} window(s) written, {result.windows_resumed} resumed",
        file=sys.stderr,
    )
    return 0
