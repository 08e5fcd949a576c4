"""Train the flood U-Net on hand-labelled chips in the Sen1Floods11 layout.

Method: supervised training of `flood_unet.FloodUNet` with a masked binary cross-entropy
(label -1 is ignored), Adam, random flips and 90-degree rotations (water has no preferred
orientation), fixed seeds. Chips follow Sen1Floods11 (Bonafilia et al. 2020, CVPRW):
``S1Hand/{id}_S1Hand.tif`` (VV, VH in dB), ``S2Hand/{id}_S2Hand.tif`` (13 Sentinel-2 L1C
bands B1..B12 incl. B8A, x1e4), ``LabelHand/{id}_LabelHand.tif`` (int16: 1 water, 0 not,
-1 no data). Band statistics for the z-score come from the training chips and are written
to the MLM model card (`geoproc.inference.card`) next to the safetensors weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as save_safetensors
from torch import nn

from geoproc.errors import NoDataError, UsageError
from geoproc.inference.card import OutputVariable, dumps_card, make_card
from geoproc.inference.weights import sha256_hex
from geoproc.products.flood.unet import HALO, SAR_BANDS, FloodUNet, mc_dropout_predict

# Sentinel-2 L1C band order in S2Hand chips -> common names used by geoproc cubes.
S2HAND_INDEX = {
    "coastal": 0,
    "blue": 1,
    "green": 2,
    "red": 3,
    "rededge1": 4,
    "rededge2": 5,
    "rededge3": 6,
    "nir": 7,
    "nir08": 8,
    "swir16": 11,
    "swir22": 12,
}
S2HAND_SCALE = 1e-4
LABEL_IGNORE = -1


@dataclass(frozen=True)
class TrainResult:
    """What training produced."""

    card_path: Path
    weights_path: Path
    losses: list[float]
    """Mean training loss per epoch."""
    validation_iou: float
    """Water IoU on the held-out chips (NaN when none were held out)."""
    n_train: int
    n_validation: int


def read_chips(
    chips_dir: str | Path, *, bands: tuple[str, ...] = SAR_BANDS
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Chip ids, inputs (N, C, H, W) float32 with NaN where missing, labels (N, H, W) int16."""
    import rasterio

    root = Path(chips_dir)
    label_dir = root / "LabelHand"
    if not label_dir.is_dir():
        raise UsageError(
            f"{root} has no LabelHand/ folder; pass the root of a Sen1Floods11-style chip set"
        )
    unknown = [b for b in bands if b not in SAR_BANDS and b not in S2HAND_INDEX]
    if unknown:
        raise UsageError(
            f"bands {unknown} are not in S1Hand/S2Hand chips; use {SAR_BANDS + tuple(S2HAND_INDEX)}"
        )
    ids, xs, ys = [], [], []
    for label_path in sorted(label_dir.glob("*_LabelHand.tif")):
        chip = label_path.name[: -len("_LabelHand.tif")]
        layers = []
        with rasterio.open(label_path) as src:
            label = src.read(1).astype(np.int16)
        if any(b in SAR_BANDS for b in bands):
            s1 = _read(root / "S1Hand" / f"{chip}_S1Hand.tif")
            if s1 is None:
                continue
            for b in bands:
                if b in SAR_BANDS:
                    layers.append((b, s1[SAR_BANDS.index(b)]))
        if any(b not in SAR_BANDS for b in bands):
            s2 = _read(root / "S2Hand" / f"{chip}_S2Hand.tif")
            if s2 is None:
                continue
            for b in bands:
                if b not in SAR_BANDS:
                    layers.append((b, s2[S2HAND_INDEX[b]] * S2HAND_SCALE))
        order = {b: i for i, b in enumerate(bands)}
        layers.sort(key=lambda kv: order[kv[0]])
        ids.append(chip)
        xs.append(np.stack([v for _, v in layers]).astype(np.float32))
        ys.append(label)
    if not ids:
        raise NoDataError(
            f"no complete chips (LabelHand + S1Hand/S2Hand for bands {bands}) under {root}"
        )
    shapes = {x.shape[1:] for x in xs} | {y.shape for y in ys}
    if len(shapes) != 1:
        raise UsageError(
            f"chips under {root} have different sizes {sorted(shapes)}; crop them to one size"
        )
    return ids, np.stack(xs), np.stack(ys)


def train(
    chips_dir: str | Path,
    out_dir: str | Path,
    *,
    bands: tuple[str, ...] = SAR_BANDS,
    epochs: int = 30,
    batch_size: int = 8,
    learning_rate: float = 2e-3,
    base_channels: int = 16,
    dropout: float = 0.2,
    validation_fraction: float = 0.2,
    seed: int = 0,
    device: str | None = None,
    name: str = "flood-unet",
    version: str = "0.1.0",
) -> TrainResult:
    """Train on the chips under ``chips_dir`` and write ``{name}-{version}.safetensors`` + card JSON."""
    ids, x, y = read_chips(chips_dir, bands=bands)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ids))
    n_val = int(round(validation_fraction * len(ids))) if len(ids) >= 5 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    mean, std = _band_stats(x[train_idx])
    z = _normalise(x, mean, std)
    dev = (
        torch.device(device)
        if device
        else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    model = FloodUNet(in_channels=len(bands), base=base_channels, dropout=dropout).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate)
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")
    xt = torch.from_numpy(z[train_idx])
    yt = torch.from_numpy(y[train_idx].astype(np.float32))
    losses: list[float] = []
    for _ in range(epochs):
        model.train()
        perm = torch.from_numpy(rng.permutation(len(train_idx)))
        total, count = 0.0, 0
        for i in range(0, len(perm), batch_size):
            xb, yb = _augment(xt[perm[i : i + batch_size]], yt[perm[i : i + batch_size]], rng)
            xb, yb = xb.to(dev), yb.to(dev)
            mask = (yb != LABEL_IGNORE).float()
            if mask.sum() == 0:
                continue
            loss = (loss_fn(model(xb)[:, 0], yb.clamp(min=0)) * mask).sum() / mask.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(xb)
            count += len(xb)
        losses.append(total / max(count, 1))
    val_iou = _validation_iou(model, z[val_idx], y[val_idx], dev) if n_val else float("nan")
    card_path, weights_path = _save(
        model.cpu(),
        Path(out_dir),
        bands=bands,
        mean=mean,
        std=std,
        base=base_channels,
        dropout=dropout,
        name=name,
        version=version,
        val_iou=val_iou,
        n_train=len(train_idx),
    )
    return TrainResult(card_path, weights_path, losses, val_iou, len(train_idx), n_val)


def _read(path: Path) -> np.ndarray | None:
    import rasterio

    if not path.is_file():
        return None
    with rasterio.open(path) as src:
        arr = src.read().astype(np.float32)
        if src.nodata is not None and np.isfinite(src.nodata):
            arr[arr == src.nodata] = np.nan
    return arr


def _band_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = np.array([np.nanmean(x[:, c]) for c in range(x.shape[1])], np.float32)
    std = np.array([max(float(np.nanstd(x[:, c])), 1e-6) for c in range(x.shape[1])], np.float32)
    return mean, std


def _normalise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    z = (x - mean[None, :, None, None]) / std[None, :, None, None]
    return np.where(np.isfinite(z), z, 0.0).astype(np.float32)


def _augment(
    xb: torch.Tensor, yb: torch.Tensor, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    k = int(rng.integers(4))
    xb, yb = torch.rot90(xb, k, dims=(-2, -1)), torch.rot90(yb, k, dims=(-2, -1))
    if rng.random() < 0.5:
        xb, yb = torch.flip(xb, dims=(-1,)), torch.flip(yb, dims=(-1,))
    return xb.contiguous(), yb.contiguous()


def _validation_iou(model: nn.Module, z: np.ndarray, y: np.ndarray, dev: torch.device) -> float:
    tp = fp = fn = 0
    for zi, yi in zip(z, y, strict=True):
        p, _ = mc_dropout_predict(model, zi, samples=4, device=dev)
        pred, ok = p >= 0.5, yi != LABEL_IGNORE
        truth = yi == 1
        tp += int((pred & truth & ok).sum())
        fp += int((pred & ~truth & ok).sum())
        fn += int((~pred & truth & ok).sum())
    return tp / (tp + fp + fn) if tp + fp + fn else float("nan")


def _save(
    model: nn.Module, out: Path, *, bands, mean, std, base, dropout, name, version, val_iou, n_train
) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    blob = save_safetensors(state)
    weights_path = out / f"{name}-{version}.safetensors"
    weights_path.write_bytes(blob)
    output = OutputVariable(
        name="water_probability",
        channels=(0,),
        kind="regression",
        dtype="float32",
        units="1",
        long_name="probability of surface water (sigmoid of channel 0)",
        fill_value=float("nan"),
    )
    card = make_card(
        name=name,
        version=version,
        architecture="FloodUNet",
        hyperparameters={"in_channels": len(bands), "base": base, "dropout": dropout},
        input_bands=list(bands),
        mean=[float(m) for m in mean],
        stddev=[float(s) for s in std],
        halo=HALO,
        outputs=[output],
        weights_href=weights_path.name,
        sha256=sha256_hex(blob),
        weights_size=len(blob),
        total_parameters=int(sum(p.numel() for p in model.parameters())),
        framework_version=torch.__version__.split("+")[0],
        description=(
            f"Flood U-Net with MC dropout on {', '.join(bands)} (SAR in dB, optical reflectance 0-1); "
            f"trained on {n_train} Sen1Floods11-layout chips; validation water IoU {val_iou:.3f}."
        ),
    )
    card_path = out / f"{name}-{version}.json"
    card_path.write_text(dumps_card(card))
    json.loads(card_path.read_text())
    return card_path, weights_path
