"""`geoproc cube build`: STAC search -> per-tile Zarr cubes (appends new dates, resumes after a crash)."""

from __future__ import annotations

import argparse
import json
import sys

from geoproc.catalog.sensors import DEFAULT_FMASK_MASKED, DEFAULT_SCL_MASKED
from geoproc.commands.run import CATALOG_HELP

# The grid's defaults are resolved when the command runs: importing geoproc.grid here would
# load numpy, shapely and pyproj just to print --help.


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("cube", help="build analysis-ready time-series cubes")
    cube_sub = parser.add_subparsers(dest="cube_command", metavar="ACTION", required=True)
    build = cube_sub.add_parser("build", help="search a catalog and write one Zarr cube per tile")
    build.add_argument("--catalog", required=True, help=CATALOG_HELP)
    build.add_argument(
        "--collections",
        required=True,
        help="comma-separated, e.g. HLSL30_2.0,HLSS30_2.0,sentinel-1-rtc",
    )
    build.add_argument(
        "--aoi",
        required=True,
        help="WEST,SOUTH,EAST,NORTH | GeoJSON file | tile ids (32N_0023_0174,...)",
    )
    build.add_argument("--start", required=True, help="first date, YYYY-MM-DD")
    build.add_argument("--end", required=True, help="last date (inclusive), YYYY-MM-DD")
    build.add_argument(
        "--out", required=True, help="output root: path, file:// or s3://bucket/prefix"
    )
    build.add_argument(
        "--tile-size",
        type=int,
        default=None,
        help="tile side in pixels (default: the grid's, 1024)",
    )
    build.add_argument(
        "--resolution",
        type=float,
        default=None,
        help="pixel size in metres (default: the grid's, 30)",
    )
    build.add_argument(
        "--max-cloud-cover",
        type=float,
        default=80.0,
        help="drop optical scenes above this eo:cloud_cover (%%)",
    )
    build.add_argument(
        "--fmask-mask",
        default=",".join(DEFAULT_FMASK_MASKED),
        help="Fmask flags that mask a pixel (add snow_ice, cirrus, water)",
    )
    build.add_argument(
        "--scl-mask",
        default=",".join(map(str, DEFAULT_SCL_MASKED)),
        help="SCL classes that mask a pixel",
    )
    build.add_argument("--bands", default=None, help="common band names to keep (default: all)")
    build.add_argument(
        "--sar-db", action="store_true", help="store vv/vh in dB instead of linear power"
    )
    build.add_argument(
        "--batch-size", type=int, default=2, help="time steps assembled at once (bounds memory)"
    )
    build.add_argument(
        "--verify",
        choices=("quick", "full"),
        default="quick",
        help="check the steps a rerun would skip: quick (chunks present and non-empty) or full "
        "(decode every chunk through its checksum); damaged steps are rebuilt and listed",
    )
    build.add_argument(
        "--record", default=None, help="write the run record JSON here (default: stdout)"
    )
    build.set_defaults(func=run_build)


def _csv(text: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())


def run_build(args: argparse.Namespace) -> int:
    from geoproc.cube.assemble import CubeOptions
    from geoproc.cube.store import build_cubes
    from geoproc.errors import UsageError
    from geoproc.grid import DEFAULT_RESOLUTION, DEFAULT_TILE_SIZE_PX
    from geoproc.storage import parse_url

    parse_url(args.out)  # a bad --out is a usage error before the search or any write

    tile_size = DEFAULT_TILE_SIZE_PX if args.tile_size is None else args.tile_size
    resolution = DEFAULT_RESOLUTION if args.resolution is None else args.resolution
    try:
        scl = tuple(int(v) for v in _csv(args.scl_mask))
    except ValueError as exc:
        raise UsageError(
            f"--scl-mask {args.scl_mask!r} must be comma-separated integers 0-11."
        ) from exc
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1.")
    from geoproc.plan import check_request_size
    from geoproc.request import parse_collections, parse_date_range

    start, end = parse_date_range(args.start, args.end)  # sized before the search runs
    check_request_size(
        args.aoi, start, end, parse_collections(_csv(args.collections)),
        tile_size_px=tile_size, resolution=resolution,
    )  # fmt: skip
    options = CubeOptions(
        fmask_masked=_csv(args.fmask_mask),
        scl_masked=scl,
        sar_db=args.sar_db,
        bands=_csv(args.bands) or None,
    )
    record = build_cubes(
        args.catalog,
        collections=_csv(args.collections),
        aoi=args.aoi,
        start=args.start,
        end=args.end,
        out=args.out,
        tile_size_px=tile_size,
        resolution=resolution,
        max_cloud_cover=args.max_cloud_cover,
        options=options,
        batch_size=args.batch_size,
        verify=args.verify,
    )
    text = json.dumps(record, indent=2, default=str)
    if args.record:
        with open(args.record, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text + "\n")
    return 0
