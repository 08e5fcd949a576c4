"""`geoproc models list|show`: which models geoproc can run, and what each one needs and makes."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="list and describe the inference models")
    models_sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    source_help = (
        "folder URL with model cards (file://, s3://); default: the models shipped with geoproc"
    )

    p_list = models_sub.add_parser("list", help="list models by name and version")
    p_list.add_argument("--source", default=None, help=source_help)
    p_list.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p_list.set_defaults(func=_list)

    p_show = models_sub.add_parser("show", help="describe one model (NAME or NAME@VERSION)")
    p_show.add_argument("name", metavar="NAME")
    p_show.add_argument("--source", default=None, help=source_help)
    p_show.add_argument("--json", action="store_true", help="print the full MLM card (STAC Item)")
    p_show.set_defaults(func=_show)


def _list(args: argparse.Namespace) -> int:
    from geoproc.inference.registry import list_models

    cards = list_models(source=args.source)
    if args.json:
        rows = [
            {"name": c.name, "version": c.version, "sha256": c.sha256, "inputs": c.input_bands}
            for c in cards
        ]
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'NAME':<20} {'VERSION':<10} {'TEMPORAL':<9} {'HALO':>4}  {'SHA256':<14} INPUTS")
    for c in cards:
        print(
            f"{c.name:<20} {c.version:<10} {c.temporal:<9} {c.halo:>4}  "
            f"{c.sha256[:12]:<14} {','.join(c.input_bands)}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    from geoproc.inference.card import dumps_card
    from geoproc.inference.registry import find_card

    card = find_card(args.name, source=args.source)
    if args.json:
        print(dumps_card(card.raw), end="")
        return 0
    props = card.raw.get("properties", {})
    print(f"{card.key}: {props.get('description', '')}")
    print(f"  architecture  {card.architecture} {json.dumps(card.hyperparameters, sort_keys=True)}")
    print(f"  framework     PyTorch {card.framework_version}")
    print(f"  weights       {card.weights_href} (sha256 {card.sha256})")
    print(f"  temporal      {card.temporal}; halo {card.halo} px")
    print("  inputs        band      mean      stddev")
    for band, mean, std in zip(card.input_bands, card.mean, card.stddev, strict=True):
        print(f"                {band:<9} {mean:<9.4g} {std:.4g}")
    print("  outputs")
    for o in card.outputs:
        classes = ", ".join(f"{v}={n}" for v, n in o.classes)
        detail = f"classes {classes}" if classes else f"units {o.units}"
        print(f"    {o.name:<20} {o.dtype:<8} fill {o.fill_value}  {detail}  ({o.long_name})")
    return 0
