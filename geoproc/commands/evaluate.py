"""`geoproc evaluate`: products scored on real labelled cases (`--real`) or against the sample truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from geoproc.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="score products on real labelled cases (--real) or against the sample archive's truth",
    )
    parser.add_argument(
        "--real",
        nargs="*",
        type=Path,
        metavar="DIR",
        default=None,
        help="score every product on the real cases shipped in tests/data/realdata and in the "
        "folders given (e.g. a licensed series kept outside the repository), beside baselines",
    )
    parser.add_argument("--out", help="output root of a run (holds products/); sample scoring")
    parser.add_argument("--archive", type=Path, help="sample archive folder (holds truth/)")
    parser.add_argument(
        "--products", default="flood,lst,canopy", help="comma-separated products to score"
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the full scoreboard JSON here"
    )
    parser.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from geoproc.request import parse_products

    products = parse_products(args.products)
    if args.real is not None:
        from geoproc.evaluate_real import default_folders, evaluate_real, format_table

        folders = [*default_folders(), *args.real]
        rows = evaluate_real(folders, products=products)
        print(format_table(rows))
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2, default=float))
        return 0
    if not args.out or not args.archive:
        raise UsageError(
            "evaluate needs --out and --archive to score a run against the sample truth, "
            "or --real [DIR ...] to score the products on real labelled cases."
        )
    from geoproc.evaluate import evaluate, format_scoreboard

    board = evaluate(args.out, args.archive, products=products)
    print(format_scoreboard(board))
    if args.json:
        args.json.write_text(json.dumps(board, indent=2, default=float))
    return 0
