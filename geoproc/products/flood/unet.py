"""The learned flood path: a small U-Net with Monte Carlo dropout, and inference on a cube step.

Method: U-Net (Ronneberger et al. 2015, MICCAI) with two down-sampling levels, trained on
Sen1Floods11-style hand-labelled chips (Bonafilia et al. 2020, CVPRW; `flood_train`).
Spatial dropout stays active at prediction time and the water probability is the mean
of ``samples`` stochastic passes; the uncertainty is the entropy of that mean, i.e. the
total predictive uncertainty of MC dropout (Gal & Ghahramani 2016, ICML; Gal 2016,
thesis ch. 3). Large scenes are cut into overlapping tiles (halo >= the receptive
field, overlap-tile strategy of the U-Net paper) so the map does not depend on the cut.
Inputs: `vv`, `vh` in dB and/or optical common bands in reflectance (0-1), z-scored with
the statistics stored in the model card; any masked input band -> no data out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch import nn

from geoproc.errors import ModelError, UsageError
from geoproc.inference.architectures import build_architecture, register_architecture
from geoproc.inference.card import ModelCard, parse_card
from geoproc.inference.device import DeviceOptions, select_device
from geoproc.inference.weights import apply_state_dict, load_state_dict
from geoproc.products.flood import fusion as flood_fusion
from geoproc.products.flood import sar as flood_sar

SAR_BANDS = ("vv", "vh")
TILE = 512
HALO = 32  # > receptive-field radius of the 2-level U-Net below (~22 px)


class FloodUNet(nn.Module):
    """Two-level U-Net; one output channel: the water logit."""

    def __init__(self, *, in_channels: int, base: int = 16, dropout: float = 0.2) -> None:
        super().__init__()
        b = base
        self.enc1 = _block(in_channels, b, 0.0)
        self.enc2 = _block(b, 2 * b, dropout)
        self.mid = _block(2 * b, 4 * b, dropout)
        self.up2 = nn.ConvTranspose2d(4 * b, 2 * b, 2, stride=2)
        self.dec2 = _block(4 * b, 2 * b, dropout)
        self.up1 = nn.ConvTranspose2d(2 * b, b, 2, stride=2)
        self.dec1 = _block(2 * b, b, dropout)
        self.head = nn.Conv2d(b, 1, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        m = self.mid(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(m), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.head(d1)


def _block(cin: int, cout: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]
    if dropout > 0:
        layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


register_architecture("FloodUNet", FloodUNet)


def mc_dropout_predict(
    model: nn.Module,
    x: np.ndarray,
    *,
    samples: int = 8,
    device: torch.device | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean water probability and its entropy for a normalised (C, H, W) array (no NaN)."""
    device = device or torch.device("cpu")
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.Dropout2d | nn.Dropout):
            m.train()  # MC dropout: keep sampling masks at inference
    c, h, w = x.shape
    ph, pw = (-h) % 4, (-w) % 4
    t = torch.from_numpy(
        np.pad(x, ((0, 0), (0, ph), (0, pw)), mode="reflect" if min(h, w) > 4 else "edge")
    )
    t = t[None].to(device, torch.float32)
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    acc = torch.zeros((1, 1) + t.shape[2:], device=device)
    with torch.no_grad():
        for _ in range(max(samples, 1)):
            acc += torch.sigmoid(model(t))
    torch.random.set_rng_state(gen_state)
    p = (acc / max(samples, 1))[0, 0, :h, :w].cpu().numpy().astype(np.float32)
    return p, flood_fusion.binary_entropy(p)


@dataclass
class LoadedFloodModel:
    """A trained flood U-Net with its card, ready to predict on cube time steps."""

    card: ModelCard
    model: nn.Module
    device: torch.device

    @property
    def bands(self) -> tuple[str, ...]:
        return self.card.input_bands

    def predict_step(
        self,
        step: xr.Dataset,
        *,
        reflectance_scale: float = 1.0,
        sar_units: str = "auto",
        samples: int = 8,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Probability, uncertainty and ``water_source`` flags for one (y, x) time step."""
        missing = [b for b in self.bands if b not in step]
        if missing:
            raise UsageError(
                f"model {self.card.key} needs bands {', '.join(self.bands)}; the cube lacks "
                f"{', '.join(missing)}: add the collection that provides them or use algorithm='threshold'"
            )
        layers = []
        for b in self.bands:
            v = np.asarray(step[b].values, np.float32)
            layers.append(
                flood_sar.to_db(v, units=sar_units) if b in SAR_BANDS else v * reflectance_scale
            )
        x = np.stack(layers)
        valid = np.isfinite(x).all(axis=0)
        z = self.card.normalise(x[None])[0]
        z = np.where(np.isfinite(z), z, 0.0).astype(np.float32)
        p, u = _tiled(self.model, z, samples=samples, device=self.device)
        flags = flood_fusion.SOURCE_MODEL
        if any(b in SAR_BANDS for b in self.bands):
            flags |= flood_fusion.SOURCE_SAR
        if any(b not in SAR_BANDS for b in self.bands):
            flags |= flood_fusion.SOURCE_OPTICAL
        src = np.where(valid, flags, 0).astype(np.uint8)
        return np.where(valid, p, np.nan), np.where(valid, u, np.nan), src


def load(card_path: str | Path, *, device: str | None = None) -> LoadedFloodModel:
    """Read a card written by `flood_train.train`, verify and load its safetensors weights."""
    path = Path(card_path)
    if path.is_dir():
        cards = sorted(path.glob("*.json"))
        if len(cards) != 1:
            raise UsageError(
                f"{path} holds {len(cards)} model cards; pass the card JSON file itself"
            )
        path = cards[0]
    if not path.is_file():
        raise UsageError(
            f"flood model card {path} does not exist; pass model= the card written by flood_train.train"
        )
    try:
        card = parse_card(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"model card {path} is not JSON ({exc}); pass the card written by flood_train.train"
        ) from None
    weights = (path.parent / card.weights_href).resolve()
    if not weights.is_file():
        raise ModelError(
            f"weights {weights} named by card {path} are missing; copy them next to the card"
        )
    model = build_architecture(card.architecture, **card.hyperparameters)
    state = load_state_dict(weights.read_bytes(), expected_sha256=card.sha256, source=str(weights))
    apply_state_dict(model, state, source=str(weights))
    dev = select_device(DeviceOptions(device=device or "auto"))
    return LoadedFloodModel(card=card, model=model.to(dev), device=dev)


def _tiled(
    model: nn.Module, z: np.ndarray, *, samples: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    _, h, w = z.shape
    if h <= TILE + 2 * HALO and w <= TILE + 2 * HALO:
        return mc_dropout_predict(model, z, samples=samples, device=device)
    p = np.empty((h, w), np.float32)
    u = np.empty((h, w), np.float32)
    for r0 in range(0, h, TILE):
        for c0 in range(0, w, TILE):
            r1, c1 = min(r0 + TILE, h), min(c0 + TILE, w)
            a0, b0 = max(r0 - HALO, 0), max(c0 - HALO, 0)
            a1, b1 = min(r1 + HALO, h), min(c1 + HALO, w)
            tp, tu = mc_dropout_predict(model, z[:, a0:a1, b0:b1], samples=samples, device=device)
            p[r0:r1, c0:c1] = tp[r0 - a0 : r1 - a0, c0 - b0 : c1 - b0]
            u[r0:r1, c0:c1] = tu[r0 - a0 : r1 - a0, c0 - b0 : c1 - b0]
    return p, u
