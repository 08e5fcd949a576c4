"""`geoproc evaluate --out URL --archive DIR`: products of a run scored against the sample truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate", help="score product stores against the sample archive's ground truth"
    )
    parser.add_argument("--out", required=True, help="output root of the run (holds products/)")
    parser.add_argument(
        "--archive", required=True, type=Path, help="sample archive folder (holds truth/)"
    )
    parser.add_argument(
        "--products", default="flood,lst,canopy", help="comma-separated products to score"
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the full scoreboard JSON here"
    )
    parser.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from geoproc.evaluate import evaluate, format_scoreboard
    from geoproc.request import parse_products

    board = evaluate(args.out, args.archive, products=parse_products(args.products))
    print(format_scoreboard(board))
    if args.json:
        args.json.write_text(json.dumps(board, indent=2, default=float))
    return 0
