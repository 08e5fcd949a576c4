"""Package a Prithvi segmenter as safetensors + MLM card, from a state dict or published weights.

Why: ``geoproc infer`` loads only hash-checked safetensors described by an MLM card, and
the published Prithvi-EO-2.0 weights are a pickled ``.pt`` of the pre-training MAE. This
turns them (plus a fine-tuned ``head.*``, or a seed-0 head to be fine-tuned) into the two
files ``geoproc infer --model DIR/NAME-VERSION.json`` runs. Nothing is downloaded here::

    python -m geoproc.inference.models.prithvi_card \\
        --checkpoint Prithvi_EO_V2_300M.pt --config config.json --out models/ \\
        [--head head.safetensors] [--classes land,water] [--scale 0.0001]

``--config`` is the model repository's ``config.json`` (its ``pretrained_cfg`` gives the
architecture, the band means and standard deviations); ``--scale`` converts those from
HLS digital numbers to the cube's reflectance units (geoproc cubes hold reflectance 0-1).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from geoproc.inference.card import OutputVariable, dumps_card, make_card
from geoproc.inference.models.prithvi_model import PrithviSegmenter, convert_checkpoint
from geoproc.inference.weights import sha256_hex

HLS_BANDS = ("blue", "green", "red", "nir08", "swir16", "swir22")
"""Prithvi-EO-2.0's bands (HLS B02, B03, B04, B8A/B05, B11/B06, B12/B07) by common name."""
_ARCH_KEYS = ("img_size", "num_frames", "patch_size", "in_chans", "embed_dim", "depth",
              "num_heads", "mlp_ratio", "coords_encoding", "coords_scale_learn")  # fmt: skip


def write_model(
    out_dir: Path,
    state: dict[str, torch.Tensor],
    *,
    hyperparameters: dict,
    mean: list[float],
    stddev: list[float],
    classes: tuple[str, ...] = ("background", "target"),
    bands: tuple[str, ...] = HLS_BANDS,
    name: str = "prithvi-eo2-seg",
    version: str = "1.0.0",
    halo: int | None = None,
    pretrained_source: str | None = None,
) -> Path:
    """Write ``NAME-VERSION.safetensors`` and its card into ``out_dir``; returns the card path.

    Outputs: ``class`` (argmax over the head's channels, 255 where the input is masked)
    and ``LASTCLASS_logit`` (the last class's raw score, NaN where masked). A pixel is
    masked when no date has every band valid.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in state.items()}
    data = save(tensors, metadata={"name": name, "version": version})
    weights = out_dir / f"{name}-{version}.safetensors"
    weights.write_bytes(data)
    hp = {**hyperparameters, "n_classes": len(classes)}
    patch = int(hp.get("patch_size", (1, 16, 16))[-1])
    outputs = [
        OutputVariable(
            name="class",
            channels=tuple(range(len(classes))),
            kind="classification",
            dtype="uint8",
            units="1",
            long_name=f"class ({', '.join(classes)})",
            fill_value=255,
            classes=tuple(enumerate(classes)),
        ),
        OutputVariable(
            name=f"{classes[-1]}_logit",
            channels=(len(classes) - 1,),
            kind="regression",
            dtype="float32",
            units="1",
            long_name=f"raw score (logit) of class {classes[-1]}",
            fill_value=float("nan"),
        ),
    ]
    card = make_card(
        name=name,
        version=version,
        architecture="PrithviSegmenter",
        hyperparameters=hp,
        input_bands=list(bands),
        mean=list(mean),
        stddev=list(stddev),
        halo=patch if halo is None else halo,
        outputs=outputs,
        weights_href=weights.name,
        sha256=sha256_hex(data),
        weights_size=len(data),
        total_parameters=sum(v.numel() for k, v in tensors.items() if k != "encoder.pos_embed"),
        framework_version=torch.__version__.split("+")[0],
        temporal="series",
        tile_size=int(hp.get("img_size", 224)),
        description="Prithvi-EO-2.0-style temporal ViT encoder (3-D patch embedding) with a "
        "segmentation head; input (batch, bands, time, height, width), output per pixel.",
        pretrained_source=pretrained_source,
    )
    card_path = out_dir / f"{name}-{version}.json"
    card_path.write_text(dumps_card(card))
    return card_path


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="published .pt (local file)")
    p.add_argument("--config", type=Path, required=True, help="the model's config.json")
    p.add_argument("--out", type=Path, required=True, help="folder for the card + safetensors")
    p.add_argument("--head", type=Path, default=None, help="fine-tuned head.* safetensors")
    p.add_argument("--classes", default="background,target", help="class names, comma-separated")
    p.add_argument("--scale", type=float, default=1e-4, help="config mean/std -> cube units")
    p.add_argument("--name", default="prithvi-eo2-seg")
    p.add_argument("--version", default="1.0.0")
    args = p.parse_args(argv)
    cfg = json.loads(args.config.read_text())
    cfg = cfg.get("pretrained_cfg", cfg)
    hp = {k: cfg[k] for k in _ARCH_KEYS if k in cfg}
    classes = tuple(c.strip() for c in args.classes.split(",") if c.strip())
    head = load_file(args.head) if args.head else None
    state = convert_checkpoint(args.checkpoint, head=head, n_classes=len(classes), **hp)
    PrithviSegmenter(n_classes=len(classes), **hp).load_state_dict(state, strict=True)
    card = write_model(
        args.out,
        state,
        hyperparameters=hp,
        mean=[m * args.scale for m in cfg["mean"]],
        stddev=[s * args.scale for s in cfg["std"]],
        classes=classes,
        name=args.name,
        version=args.version,
        pretrained_source=args.checkpoint.name,
    )
    print(card)
    if head is None:
        print("note: the segmentation head is untrained (seed 0); fine-tune it before use")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
