"""`geoproc train flood|canopy`: train the learned models and write safetensors + MLM card."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train a product model (weights + MLM card)")
    which = parser.add_subparsers(dest="train_product", metavar="PRODUCT", required=True)

    flood = which.add_parser(
        "flood", help="U-Net on chips in the Sen1Floods11 layout (S1Hand, S2Hand, LabelHand)"
    )
    flood.add_argument(
        "--chips", type=Path, required=True, help="folder holding S1Hand/, S2Hand/, LabelHand/"
    )
    flood.add_argument("--out", type=Path, required=True, help="folder for the weights and card")
    flood.add_argument("--epochs", type=int, default=30)
    flood.add_argument("--seed", type=int, default=0)
    flood.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N")
    flood.set_defaults(func=_flood)

    canopy = which.add_parser(
        "canopy", help="temporal CNN from a sample archive (train on one zone, score on the other)"
    )
    canopy.add_argument(
        "--archive", type=Path, required=True, help="sample archive folder (items + truth)"
    )
    canopy.add_argument("--out", type=Path, required=True, help="folder for the weights and card")
    canopy.add_argument(
        "--train-zone", default="32", help="UTM zone to train on; the others are scored"
    )
    canopy.add_argument("--epochs", type=int, default=15)
    canopy.add_argument("--seed", type=int, default=0)
    canopy.set_defaults(func=_canopy)


def _check_positive(value: int, name: str) -> None:
    from geoproc.errors import UsageError

    if value < 1:
        raise UsageError(f"{name} {value} must be 1 or more.")


def _flood(args: argparse.Namespace) -> int:
    from geoproc.errors import UsageError
    from geoproc.products.flood.train import train

    _check_positive(args.epochs, "--epochs")
    if not args.chips.is_dir():
        raise UsageError(
            f"--chips {args.chips} is not a folder: pass the folder that holds S1Hand/ and LabelHand/."
        )
    result = train(args.chips, args.out, epochs=args.epochs, seed=args.seed, device=args.device)
    print(json.dumps(result.__dict__, indent=2, default=str))
    return 0


def _canopy(args: argparse.Namespace) -> int:
    from geoproc.errors import UsageError
    from geoproc.products.canopy.sample_training import train_and_score

    _check_positive(args.epochs, "--epochs")
    if not (args.archive / "truth").is_dir():
        raise UsageError(
            f"--archive {args.archive} has no truth/ folder: pass a folder made by `geoproc sample create`."
        )
    figures = train_and_score(
        args.archive, args.out, train_zone=args.train_zone, epochs=args.epochs, seed=args.seed
    )
    print(json.dumps(figures, indent=2, default=str))
    return 0
