"""`geoproc infer`: run any MLM-carded model over any cube store into a CF Zarr product store.

Checks come before anything is written: the card's input bands against the cube's
variables (exit 2 naming the missing ones and the card), the weights against the card's
sha256 (refused), the device and the blend options. The run itself is the inference
engine's: block by block, resumable (rerun the same command after a crash). ``--blend auto``
(the default) blends overlapping windows with weights for models with a fixed input size
(cards with ``geoproc:tile_size``: transformers, whose receptive field is the whole
window, so crop-only tiling leaves seams) and crops the halo for the others (convolution
nets whose card halo covers their receptive field: exact, and about 2x fewer forward
pixels than blending at the default 256 px windows).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "infer",
        help="run a model (MLM card + safetensors) over a cube store, write a product store",
        description=__doc__,
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="NAME|PATH",
        help="model NAME or NAME@VERSION (from --source), or the path/URL of a card .json "
        "whose weights lie next to it",
    )
    p.add_argument(
        "--source",
        default=None,
        help="folder URL with model cards for a NAME (default: the models shipped with geoproc)",
    )
    p.add_argument("--cube", required=True, metavar="URL", help="input cube Zarr store")
    p.add_argument("--out", required=True, metavar="URL", help="output product Zarr store")
    p.add_argument(
        "--variables",
        nargs="+",
        default=None,
        metavar="VAR",
        help="cube variables to feed the card's input bands: either one per band, in the "
        "card's order, or BAND=VAR pairs (default: variables named like the bands)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument(
        "--precision",
        default="float32",
        choices=["float32", "bfloat16", "float16"],
        help="autocast dtype on CUDA (CPU always runs float32)",
    )
    p.add_argument(
        "--blend",
        default="auto",
        choices=["auto", "linear", "cosine", "none"],
        help="weights for overlapping windows; none: crop each block's halo only; auto: "
        "linear for models with a fixed input size (card geoproc:tile_size) or when --tile or "
        "--overlap is given, else none",
    )
    p.add_argument(
        "--overlap",
        type=int,
        default=None,
        metavar="PX",
        help="overlap of neighbouring windows (default: max(2 x card halo + 1, tile / 4))",
    )
    p.add_argument(
        "--tile",
        type=int,
        default=None,
        metavar="PX",
        help="window side for blending (default: the card's geoproc:tile_size, else 256)",
    )
    p.add_argument("--batch-mb", type=int, default=512, help="working memory per batch (MiB)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing store instead of resuming"
    )
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from geoproc.inference.device import DeviceOptions
    from geoproc.inference.engine import EngineOptions, open_cube, run_inference
    from geoproc.inference.kernel import ModelKernel
    from geoproc.inference.registry import load_from_card

    card, source, label = _resolve_card(args.model, args.source)
    inputs = _map_variables(card, args.variables)
    cube = open_cube(args.cube)
    _check_inputs(cube, card, inputs, label=label, cube_url=args.cube)
    loaded = load_from_card(card, source=source)  # refuses weights whose sha256 differs
    kernel = ModelKernel(
        card,
        source=source,
        device=DeviceOptions(device=args.device, precision=args.precision),
        module=loaded.module,
        inputs=inputs,
    )
    device = kernel.device  # a missing GPU is a usage error before anything is written
    options = EngineOptions(
        batch_memory_bytes=_positive(args.batch_mb, "--batch-mb") * 1024 * 1024,
        blend=_blend_mode(args, card),
        tile=None if args.tile is None else _positive(args.tile, "--tile"),
        overlap=None if args.overlap is None else _positive(args.overlap, "--overlap"),
        overwrite=args.overwrite,
    )
    stats = run_inference(args.cube, kernel, args.out, options=options)
    print(
        f"infer {card.key} on {device}, blend {options.blend}: {stats.chunks_written} chunks written, "
        f"{stats.chunks_skipped} already done, {stats.seconds_total:.1f} s -> {args.out}"
    )
    return 0


def _resolve_card(model: str, source: str | None):
    """(card, weights folder, how to name it in messages) for a NAME or a card path."""
    from geoproc.inference.registry import find_card

    if model.endswith(".json"):
        import json

        from geoproc.errors import MissingFileError, ModelError
        from geoproc.inference._io import filesystem
        from geoproc.inference.card import parse_card

        fs, path = filesystem(model)
        try:
            with fs.open(path, "rb") as f:
                doc = json.load(f)
        except FileNotFoundError:
            raise MissingFileError(
                f"model card {model} does not exist; check --model (a card .json path or a "
                "model NAME)"
            ) from None
        except json.JSONDecodeError as exc:
            raise ModelError(f"model card {model} is not valid JSON ({exc}); fix it") from None
        folder = model.rsplit("/", 1)[0] if "/" in model else "."
        card = parse_card(doc)
        return card, folder, f"{card.key} ({model})"
    card = find_card(model, source=source)
    return card, source, card.key


def _map_variables(card, variables: list[str] | None) -> tuple[str, ...]:
    """Cube variable per card band, from --variables (positional or BAND=VAR pairs)."""
    from geoproc.errors import UsageError

    bands = card.input_bands
    if not variables:
        return bands
    if all("=" in v for v in variables):
        pairs = dict(v.split("=", 1) for v in variables)
        unknown = sorted(set(pairs) - set(bands))
        if unknown:
            raise UsageError(
                f"--variables names bands {unknown} that model {card.key} does not take; "
                f"its bands are {list(bands)}"
            )
        return tuple(pairs.get(b, b) for b in bands)
    if any("=" in v for v in variables) or len(variables) != len(bands):
        raise UsageError(
            f"--variables needs one cube variable per input band of {card.key} "
            f"({len(bands)}: {' '.join(bands)}), in that order, or BAND=VAR pairs; "
            f"got {' '.join(variables)}"
        )
    return tuple(variables)


def _check_inputs(cube, card, inputs: tuple[str, ...], *, label: str, cube_url: str) -> None:
    from geoproc.errors import UsageError

    missing = [v for v in inputs if v not in cube.data_vars]
    if missing:
        raise UsageError(
            f"cube {cube_url!r} lacks variables {missing} that model card {label} needs "
            f"(its input bands: {list(card.input_bands)}; the cube has "
            f"{sorted(map(str, cube.data_vars))}); map them with --variables BAND=VAR or "
            "build the cube with those bands"
        )


def _blend_mode(args: argparse.Namespace, card) -> str:
    """``auto``: blend models with a fixed window size (or when --tile/--overlap is given),
    crop the others."""
    if args.blend != "auto":
        return args.blend
    asked = args.tile is not None or args.overlap is not None
    return "linear" if card.tile_size or asked else "none"


def _positive(value: int, option: str) -> int:
    from geoproc.errors import UsageError

    if value <= 0:
        raise UsageError(f"{option} must be a positive number, got {value}")
    return value
