"""`geoproc verify URL`: decode and checksum every chunk of every complete step of cube stores."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "verify",
        help="check cube stores chunk by chunk (checksums) and name damaged time steps",
    )
    parser.add_argument(
        "url", help="a cube store (.../cubes/TILE.zarr) or an output root holding cubes/"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="metadata and chunk sizes only (what every rerun checks), no chunk is decoded",
    )
    parser.add_argument(
        "--record", default=None, help="write the JSON report here (default: stdout)"
    )
    parser.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    """Exit 0 when every store verifies, 1 when a step is damaged (a rerun rewrites it)."""
    from geoproc.cube.verify import cube_stores, verify_cube
    from geoproc.errors import UsageError

    stores = cube_stores(args.url)
    if not stores:
        raise UsageError(
            f"{args.url} holds no cube store (no .zgroup or zarr.json, no cubes/*.zarr): pass a store or "
            "the --out of a build."
        )
    level = "quick" if args.quick else "full"
    reports = [verify_cube(s, level=level) for s in stores]
    text = json.dumps({"stores": [r.to_record() for r in reports]}, indent=2)
    if args.record:
        with open(args.record, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text + "\n")
    bad = [r for r in reports if not r.ok]
    chunks = sum(r.chunks_checked for r in reports)
    if not bad:
        print(
            f"verify ({level}): {len(reports)} store(s), {chunks} chunks: all good", file=sys.stderr
        )
        return 0
    for r in bad:
        steps = ", ".join(str(i) for i in sorted(r.damaged)) or "-"
        print(
            f"verify ({level}): {r.url}: damaged steps {steps}"
            + (f"; missing metadata {', '.join(r.metadata_missing)}" if r.metadata_missing else ""),
            file=sys.stderr,
        )
    print(
        "Rerun the build with the same arguments (geoproc cube build / geoproc run): it "
        "rewrites damaged steps from their sources and restores lost metadata.",
        file=sys.stderr,
    )
    return 1
