"""`geoproc demo`: the main job on the embedded default, end to end, with nothing set up before.

Generates the sample archive if missing, serves it with a real STAC API on loopback,
runs the regional flow for all three products into `--out`, scores the products against
the archive's ground truth and says where everything is. The STAC server is always
stopped, also on failure.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo", help="sample archive -> local STAC API -> cubes, products, publish -> scoreboard"
    )
    parser.add_argument(
        "--archive",
        type=Path,
        default=Path("data/sample-small"),
        help="sample archive folder (created if missing)",
    )
    parser.add_argument(
        "--size", choices=("small", "medium"), default="small", help="sample archive size"
    )
    parser.add_argument("--seed", type=int, default=0, help="sample archive seed")
    parser.add_argument(
        "--out", default="output", help="output root: path, file:// or s3://bucket/prefix"
    )
    parser.add_argument("--products", default="flood,lst,canopy", help="comma-separated products")
    parser.add_argument(
        "--no-flow", action="store_true", help="run in-process instead of as the Prefect flow"
    )
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from geoproc.commands.run import execute
    from geoproc.dev.sample import create_archive
    from geoproc.dev.stac_server import serve_archive
    from geoproc.evaluate import evaluate, format_scoreboard
    from geoproc.request import RunRequest, parse_products
    from geoproc.storage import parse_url, write_bytes_atomic

    products = parse_products(args.products)
    out = parse_url(args.out)
    started = time.perf_counter()
    print(f"[1/4] sample archive ({args.size}, seed {args.seed}) at {args.archive}", flush=True)
    archive = Path(create_archive(args.archive, seed=args.seed, size=args.size))
    aoi_path = archive / "aoi.geojson"
    props = json.loads(aoi_path.read_text())["features"][0]["properties"]
    with serve_archive(archive) as url:
        print(f"[2/4] STAC API (rustac) serving the archive at {url}", flush=True)
        request = RunRequest.create(
            products=products,
            aoi=str(aoi_path),
            start=props.get("start", "2024-01-01"),
            end=props.get("end", "2024-12-31"),
            catalog=url,
            out=out.url,
            options={"tile_size_px": int(props.get("tile_size_px", 1024)), "max_cloud_cover": 80.0},
        )
        how = "in-process" if args.no_flow else "as the Prefect flow 'regional-mapping'"
        print(f"[3/4] running {', '.join(products)} {how} into {out.url}", flush=True)
        report = execute(request, use_flow=not args.no_flow, publish=True)
    print("[4/4] scoring against the archive's ground truth", flush=True)
    board = evaluate(out.url, archive, products=products)
    write_bytes_atomic(
        out.join("scoreboard.json"), json.dumps(board, indent=2, default=float).encode()
    )
    cubes = report.get("cubes", {})
    written = sum(len(c.get("steps_written", [])) for c in cubes.values())
    print()
    print(
        f"search: {report['search']['found']} items; cubes: {len(cubes)} tile(s), {written} time step(s) written"
    )
    for key, rec in sorted(report.get("products", {}).items()):
        print(f"  {key}: {rec['status']} ({rec['steps']} step(s)) -> {rec['store']}")
    print()
    print(format_scoreboard(board))
    print()
    print(
        f"outputs under {out.url}: cubes/, products/, cog/, tiles/, stac/catalog.json, viewer/index.html, runs/{report['run_id']}/report.json + report.html, scoreboard.json"
    )
    print(f"demo finished in {time.perf_counter() - started:.0f} s")
    return 0
