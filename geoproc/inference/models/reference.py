"""The shipped reference model ``tiny-fcn``: deterministic weights + its MLM card.

Why: the engine, its tests and ``geoproc bench infer`` need a real torch model with a
card and verified weights without any download. The weights come from a fixed seed
(not trained; it is an engine reference, not a product model). Regenerate with
``python -m geoproc.inference.models.reference geoproc/inference/cards``; the bytes
are identical on every machine with the same torch version.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save

from geoproc.inference.card import OutputVariable, dumps_card, make_card
from geoproc.inference.models.tiny_fcn import TinyFCN
from geoproc.inference.weights import sha256_hex

NAME = "tiny-fcn"
VERSION = "1.0.0"
BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]
HYPERPARAMETERS = {"in_channels": len(BANDS), "n_classes": 2, "width": 16, "depth": 3}
OUTPUTS = [
    OutputVariable(
        name="water_probability",
        channels=(0,),
        kind="regression",
        dtype="float32",
        units="1",
        long_name="probability of open water (reference model, untrained)",
        fill_value=float("nan"),
    ),
    OutputVariable(
        name="surface_class",
        channels=(1, 2),
        kind="classification",
        dtype="uint8",
        units="1",
        long_name="surface class (reference model, untrained)",
        fill_value=255,
        classes=((0, "land"), (1, "water")),
    ),
]


def build_reference(out_dir: Path) -> tuple[Path, Path]:
    """Write ``tiny-fcn-1.0.0.safetensors`` and its card into ``out_dir``."""
    torch.manual_seed(20260101)
    module = TinyFCN(**HYPERPARAMETERS)
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    data = save(state, metadata={"name": NAME, "version": VERSION})
    weights = out_dir / f"{NAME}-{VERSION}.safetensors"
    weights.write_bytes(data)
    card = make_card(
        name=NAME,
        version=VERSION,
        architecture="TinyFCN",
        hyperparameters=HYPERPARAMETERS,
        input_bands=BANDS,
        mean=[0.08, 0.10, 0.12, 0.25, 0.20, 0.14],
        stddev=[0.05, 0.06, 0.08, 0.12, 0.10, 0.09],
        halo=HYPERPARAMETERS["depth"] + 1,
        outputs=OUTPUTS,
        weights_href=weights.name,
        sha256=sha256_hex(data),
        weights_size=len(data),
        total_parameters=sum(p.numel() for p in module.parameters()),
        framework_version=torch.__version__.split("+")[0],
        description="Tiny fully convolutional reference net (3x3 conv stack, receptive-field "
        "radius 3, spatial dropout) for engine tests and benchmarks; untrained weights from "
        "a fixed seed.",
    )
    card_path = out_dir / f"{NAME}-{VERSION}.json"
    card_path.write_text(dumps_card(card))
    return weights, card_path


if __name__ == "__main__":  # pragma: no cover
    build_reference(Path(sys.argv[1]))
