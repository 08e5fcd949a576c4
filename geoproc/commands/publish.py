"""`geoproc publish --out URL`: COGs, web tiles, STAC catalog and viewer of a run's products."""

from __future__ import annotations

import argparse
import json
import uuid


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "publish",
        help="publish product stores as COGs, web tiles, a STAC catalog and an offline viewer",
        description=(
            "Reads OUT/products/PRODUCT/TILE.zarr and writes OUT/cog, OUT/tiles, OUT/stac and "
            "OUT/viewer. Idempotent: a rerun rewrites only objects whose bytes changed."
        ),
    )
    parser.add_argument(
        "--out", required=True, help="output root of the run: a path, file:///... or s3://..."
    )
    parser.add_argument(
        "--products",
        nargs="+",
        default=None,
        metavar="PRODUCT",
        help="only these products (default: every product store found)",
    )
    parser.add_argument(
        "--run-id",
        default=None,
        help="run id recorded in the STAC items (default: a new random id)",
    )
    parser.add_argument(
        "--aoi",
        default=None,
        help="limit web tiles to WEST,SOUTH,EAST,NORTH or a GeoJSON file, or publish only these tile ids",
    )
    parser.add_argument(
        "--source-catalog",
        default=None,
        metavar="URL",
        help="STAC API the run searched: source item ids become derived_from links",
    )
    parser.add_argument(
        "--stac-api",
        default=None,
        metavar="URL",
        help="also create/replace the collections and items in this STAC API (Transactions)",
    )
    parser.add_argument(
        "--asset-base-url",
        default=None,
        metavar="URL",
        help="public URL of --out used for asset hrefs pushed to --stac-api (default: --out)",
    )
    parser.add_argument(
        "--no-validate",
        action="store_true",
        help="skip the offline STAC schema validation of each item",
    )
    parser.set_defaults(func=_publish)


def _publish(args: argparse.Namespace) -> int:
    from geoproc.publish.publisher import publish_run
    from geoproc.storage import parse_url

    parse_url(args.out)  # a bad --out is a usage error before anything is read or written
    products = [p for group in args.products or [] for p in group.split(",") if p] or None
    summary = publish_run(
        args.out,
        products=products,
        run_id=args.run_id or uuid.uuid4().hex[:12],
        aoi=args.aoi,
        source_catalog=args.source_catalog,
        stac_api=args.stac_api,
        asset_base_url=args.asset_base_url,
        validate=not args.no_validate,
    )
    print(json.dumps(summary, indent=2))
    return 0
