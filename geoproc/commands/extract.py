"""`geoproc extract`: point time series or zonal statistics from a cube or product store."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "extract",
        help="time series of points (nearest pixel) or zonal statistics of polygons, to CSV/Parquet",
        description="Read every date of the chosen variables at points (the pixel holding each "
        "point) or over polygons (pixels whose centre is inside; all-touched off) and write a "
        "long table: point_id,time,variable,value,... or polygon_id,time,variable,mean,median,"
        "std,count_valid,count_masked. Masked values stay empty (CSV) / null (Parquet).",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--points", help="GeoJSON of Point features (WGS84) or CSV with lon,lat or x,y columns"
    )
    where.add_argument("--polygons", help="GeoJSON of Polygon/MultiPolygon features (WGS84)")
    store = parser.add_mutually_exclusive_group(required=True)
    store.add_argument(
        "--cube", help="a cube store, e.g. OUT/cubes/TILE.zarr (complete dates only)"
    )
    store.add_argument("--product", help="a product store, e.g. OUT/products/flood/TILE.zarr")
    parser.add_argument(
        "--variables", required=True, help="comma-separated variables, e.g. red,nir08"
    )
    parser.add_argument("--out", required=True, help="FILE.csv or FILE.parquet (local or s3://)")
    parser.add_argument("--crs", default=None, help="CRS of a CSV's x,y columns, e.g. EPSG:32633")
    parser.add_argument("--start", default=None, help="first date kept, YYYY-MM-DD (inclusive)")
    parser.add_argument("--end", default=None, help="last date kept, YYYY-MM-DD (inclusive)")
    parser.set_defaults(func=run_extract)


def run_extract(args: argparse.Namespace) -> int:
    """Validate everything, read, then write the table in one piece (nothing on failure)."""
    import sys

    from geoproc.errors import InvalidDateError, UsageError
    from geoproc.request import parse_date
    from geoproc.timeseries.geometries import read_points, read_polygons
    from geoproc.timeseries.points import extract_points
    from geoproc.timeseries.store import open_series_store
    from geoproc.timeseries.table import output_format, write_table
    from geoproc.timeseries.zonal import zonal_statistics

    output_format(args.out)
    variables = [v.strip() for v in args.variables.split(",") if v.strip()]
    if not variables:
        raise UsageError("--variables is empty: name one or more, e.g. --variables red,nir08.")
    start = parse_date(args.start, argument="--start") if args.start else None
    end = parse_date(args.end, argument="--end") if args.end else None
    if start and end and end < start:
        raise InvalidDateError(f"--end {end} is before --start {start}: swap them.")
    if args.points:
        if args.crs is None or args.points.lower().endswith(".csv"):
            shapes = read_points(args.points, crs=args.crs)
        else:
            raise UsageError("--crs applies to --points CSV files with x,y columns only.")
    else:
        if args.crs:
            raise UsageError(
                "--crs applies to --points CSV files only; polygons are GeoJSON (WGS84)."
            )
        shapes = read_polygons(args.polygons)
    url, option = (args.cube, "--cube") if args.cube else (args.product, "--product")
    store = open_series_store(
        url, option=option, cube=bool(args.cube), variables=variables, start=start, end=end
    )
    if args.points:
        table = extract_points(store, shapes, source=args.points)
    else:
        table = zonal_statistics(store, shapes, source=args.polygons)
    write_table(table, args.out)
    kind = "points" if args.points else "polygons"
    print(
        f"extract: {len(shapes.ids)} {kind} x {len(variables)} variable(s): {len(table)} rows -> {args.out}",
        file=sys.stderr,
    )
    return 0
