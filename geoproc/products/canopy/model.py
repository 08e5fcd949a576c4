"""A small temporal network for tree canopy type and cover over twelve monthly composites.

Method: a 1-D convolutional network over the 12 season-aligned monthly steps of six HLS
bands, NDVI, NDMI and a validity-mask channel (1 = month observed, 0 = interpolated), in
the spirit of the temporal CNN of Pelletier et al. (2019, Remote Sens. 11:523, "TempCNN")
and the pixel-set/temporal encoders used for HLS tree-type mapping (EarthPT / Dargana).
The convolutions use circular padding and the features are pooled (mean and max) over
time, so the network is invariant to a shift of the annual cycle: it sees the shape and
level of the cycle, not the calendar, which keeps it valid in both hemispheres and in the
tropics. Dropout regularises it (and allows MC-dropout uncertainty in the engine). Heads:
three class logits (no tree, broadleaf, conifer) and a canopy-cover fraction (sigmoid).

Weights are safetensors only; the card is a JSON STAC item with `mlm:` fields and the
sha256 of the weights, checked at load (a mismatch raises `ModelError`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from geoproc.errors import ModelError
from geoproc.products.canopy.composites import CANOPY_BANDS, N_MONTHS, MonthlyComposites

MODEL_NAME = "canopy-temporal-cnn"
ARCHITECTURE = "CanopyTemporalNet"
FEATURES = (*CANOPY_BANDS, "ndvi", "ndmi", "observed")
"""Input channels per monthly step, in order."""
CLASS_NAMES = ("no_tree", "broadleaf", "conifer")
DEFAULT_WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS_FILE = "canopy_temporal.safetensors"
MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.5.2/schema.json"
FILE_SCHEMA = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
CLASSIFICATION_SCHEMA = "https://stac-extensions.github.io/classification/v1.1.0/schema.json"
VERSION_SCHEMA = "https://stac-extensions.github.io/version/v1.2.0/schema.json"
SHA256_MULTIHASH_PREFIX = "1220"
CARD_FILE = "canopy_temporal.json"


class CanopyTemporalNet(nn.Module):
    """Shift-invariant temporal CNN: (batch, 12, features) -> (class logits, cover fraction)."""

    def __init__(self, *, n_features: int = len(FEATURES), hidden: int = 32, dropout: float = 0.2):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv1d(n_features, hidden, 3, padding=1, padding_mode="circular"),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Conv1d(hidden, hidden, 3, padding=2, dilation=2, padding_mode="circular"),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Conv1d(hidden, hidden, 3, padding=1, padding_mode="circular"),
            nn.ReLU(),
        )
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(2 * hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, len(CLASS_NAMES) + 1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (batch, months, features) -> logits (batch, 3), cover fraction (batch,)."""
        h = self.encoder(x.transpose(1, 2))
        pooled = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
        out = self.head(pooled)
        return out[:, : len(CLASS_NAMES)], torch.sigmoid(out[:, -1])


@dataclass(frozen=True)
class LoadedModel:
    """A canopy network ready for inference, with its card."""

    model: CanopyTemporalNet
    card: dict
    device: torch.device

    @property
    def version(self) -> str:
        return str(self.card["properties"].get("version", "unknown"))

    @property
    def sha256(self) -> str:
        checksum = str(self.card["assets"]["weights"]["file:checksum"])
        return checksum.removeprefix(SHA256_MULTIHASH_PREFIX)


def model_features(composites: MonthlyComposites) -> np.ndarray:
    """(pixels, 12, features) float32 network input; pixels without data get zeros."""
    values = np.nan_to_num(composites.values, nan=0.0)  # (12, bands, pixels)
    nir = values[:, CANOPY_BANDS.index("nir08")]
    red = values[:, CANOPY_BANDS.index("red")]
    swir = values[:, CANOPY_BANDS.index("swir16")]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-4)
    ndmi = (nir - swir) / np.maximum(nir + swir, 1e-4)
    stacked = np.concatenate(
        [
            np.clip(values, 0.0, 1.5),
            np.clip(ndvi, -1, 1)[:, None],
            np.clip(ndmi, -1, 1)[:, None],
            composites.observed[:, None].astype("float32"),
        ],
        axis=1,
    )  # (12, features, pixels)
    return np.ascontiguousarray(stacked.transpose(2, 0, 1), dtype="float32")


def best_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when present, CPU otherwise (or what the caller asks for); the engine's rule."""
    from geoproc.inference.device import DeviceOptions, select_device

    if isinstance(device, torch.device):
        return device
    return select_device(DeviceOptions(device=device or "auto"))


@torch.no_grad()
def predict(
    loaded: LoadedModel, features: np.ndarray, *, batch_size: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (3, pixels) and cover fraction (pixels,) for network inputs."""
    n = features.shape[0]
    probabilities = np.empty((len(CLASS_NAMES), n), dtype="float32")
    cover = np.empty(n, dtype="float32")
    loaded.model.eval()
    for start in range(0, n, batch_size):
        x = torch.from_numpy(features[start : start + batch_size]).to(loaded.device)
        logits, fraction = loaded.model(x)
        probabilities[:, start : start + x.shape[0]] = torch.softmax(logits, 1).T.float().cpu()
        cover[start : start + x.shape[0]] = fraction.float().cpu()
    return probabilities, cover


def save_model(
    model: CanopyTemporalNet, out_dir: str | Path, *, version: str, description: dict
) -> Path:
    """Write safetensors weights and a JSON card (mlm: fields, sha256) to ``out_dir``."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights_path = out / WEIGHTS_FILE
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(weights_path), metadata={"architecture": ARCHITECTURE})
    card = _card(model, sha256=_sha256(weights_path), version=version, description=description)
    card_path = out / CARD_FILE
    write_card(card, card_path)
    return card_path


def write_card(card: dict, path: str | Path) -> None:
    """Stable JSON text (sorted keys), so a card's bytes change only with its content."""
    Path(path).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")


def load_model(
    weights_dir: str | Path | None = None, *, device: str | torch.device | None = None
) -> LoadedModel:
    """Load the network from a card + weights directory (default: the shipped weights),
    refusing weights whose sha256 differs from the card."""
    directory = Path(weights_dir) if weights_dir is not None else DEFAULT_WEIGHTS_DIR
    return _load_cached(str(directory.resolve()), str(best_device(device)))


@lru_cache(maxsize=4)
def _load_cached(directory: str, device: str) -> LoadedModel:
    from safetensors.torch import load_file

    card_path = Path(directory) / CARD_FILE
    weights_path = Path(directory) / WEIGHTS_FILE
    if not card_path.exists() or not weights_path.exists():
        raise ModelError(
            f"no canopy model in {directory}: expected {CARD_FILE} and {WEIGHTS_FILE}; "
            "train one with geoproc.products.canopy.train.train(...) or pass method='rules'"
        )
    card = json.loads(card_path.read_text())
    checksum = str(card.get("assets", {}).get("weights", {}).get("file:checksum", ""))
    expected = checksum.removeprefix(SHA256_MULTIHASH_PREFIX)
    actual = _sha256(weights_path)
    if expected != actual:
        raise ModelError(
            f"canopy weights {weights_path} have sha256 {actual} but the card expects "
            f"{expected}: restore the original weights or retrain and write a new card"
        )
    architecture = card["properties"].get("mlm:architecture")
    if architecture != ARCHITECTURE:
        raise ModelError(
            f"card {card_path} names architecture {architecture!r}; the canopy product "
            f"needs {ARCHITECTURE!r}: point weights= at a canopy model directory"
        )
    model = CanopyTemporalNet(**card["properties"].get("mlm:hyperparameters", {}))
    try:
        model.load_state_dict(load_file(str(weights_path)))
    except RuntimeError as error:
        raise ModelError(
            f"canopy weights {weights_path} do not fit {ARCHITECTURE}: {error}; retrain them"
        ) from error
    torch_device = torch.device(device)
    model.to(torch_device).eval()
    return LoadedModel(model=model, card=card, device=torch_device)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _card(model: CanopyTemporalNet, *, sha256: str, version: str, description: dict) -> dict:
    """A STAC item with MLM v1.5.2 fields (same conventions as `geoproc.inference.card`)."""
    kwargs = {
        "n_features": model.encoder[0].in_channels,
        "hidden": model.head[1].out_features,
        "dropout": model.head[0].p,
    }
    n_params = sum(p.numel() for p in model.parameters())
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [MLM_SCHEMA, FILE_SCHEMA, CLASSIFICATION_SCHEMA, VERSION_SCHEMA],
        "id": f"{MODEL_NAME}-{version}",
        "geometry": None,
        "properties": {
            "datetime": "2026-01-01T00:00:00Z",
            "description": description.get("text", "Tree canopy type and cover"),
            "version": version,
            "mlm:name": MODEL_NAME,
            "mlm:architecture": ARCHITECTURE,
            "mlm:tasks": ["classification", "regression"],
            "mlm:framework": "PyTorch",
            "mlm:framework_version": torch.__version__.split("+")[0],
            "mlm:total_parameters": int(n_params),
            "mlm:pretrained": False,
            "mlm:pretrained_source": None,
            "mlm:accelerator": None,
            "mlm:accelerator_constrained": False,
            "mlm:hyperparameters": kwargs,
            "bands": [{"name": b, "eo:common_name": b} for b in CANOPY_BANDS],
            "geoproc:halo": 0,
            "geoproc:temporal": "series",
            "geoproc:training": description.get("training", {}),
            "mlm:input": [
                {
                    "name": "monthly composites",
                    "bands": list(CANOPY_BANDS),
                    "input": {
                        "shape": [-1, N_MONTHS, len(FEATURES)],
                        "dim_order": ["batch", "time", "bands"],
                        "data_type": "float32",
                    },
                    "value_scaling": None,
                    "resize_type": None,
                    "pre_processing_function": {
                        "format": "python",
                        "expression": "geoproc.products.canopy.model:model_features",
                    },
                    "description": "12 season-aligned monthly median composites (day of year "
                    "+182 south of the equator), circularly gap-filled; reflectance clipped to "
                    "0..1.5; channels " + ", ".join(FEATURES),
                }
            ],
            "mlm:output": [
                {
                    "name": "canopy_class",
                    "description": "class logits (softmax -> probabilities)",
                    "tasks": ["classification"],
                    "result": {
                        "shape": [-1, len(CLASS_NAMES)],
                        "dim_order": ["batch", "class"],
                        "data_type": "float32",
                    },
                    "classification:classes": [
                        {"value": i, "name": n, "description": n} for i, n in enumerate(CLASS_NAMES)
                    ],
                    "post_processing_function": None,
                },
                {
                    "name": "canopy_cover",
                    "description": "canopy cover fraction 0..1 (sigmoid)",
                    "tasks": ["regression"],
                    "result": {"shape": [-1], "dim_order": ["batch"], "data_type": "float32"},
                    "post_processing_function": None,
                },
            ],
        },
        "links": [],
        "assets": {
            "weights": {
                "href": WEIGHTS_FILE,
                "title": f"{MODEL_NAME} {version} weights",
                "type": "application/octet-stream; application=safetensors",
                "roles": ["mlm:model", "mlm:weights"],
                "mlm:artifact_type": "safetensors.torch.save_file",
                "file:checksum": SHA256_MULTIHASH_PREFIX + sha256,
            }
        },
    }
