"""A tiny fully convolutional net with a known receptive field, for tests and benchmarks.

Why it exists: the engine must prove that tiled inference equals whole-image inference
when the halo covers the receptive field (the overlap-tile strategy of Ronneberger et al.
2015, "U-Net", MICCAI, section 3; torchgeo's GridGeoSampler uses the same idea). A stack
of ``depth`` 3x3 'same' convolutions has a receptive-field radius of exactly ``depth``
pixels, so ``halo >= depth`` makes each tile's centre independent of where it was cut.
Spatial dropout (Tompson et al. 2015) sits between the layers so MC dropout
(Gal & Ghahramani 2016) has something to sample.
"""

from __future__ import annotations

import torch
from torch import nn


class TinyFCN(nn.Module):
    """``depth`` 3x3 convolutions + a 1x1 head; output channels: [probability, class logits...]."""

    def __init__(
        self,
        *,
        in_channels: int,
        n_classes: int = 2,
        width: int = 16,
        depth: int = 3,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(depth):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.Dropout2d(dropout)]
            channels = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, 1 + n_classes, 1)
        self.depth = depth

    @property
    def receptive_radius(self) -> int:
        """Pixels of context each side that influence one output pixel."""
        return self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.body(x))
        return torch.cat([torch.sigmoid(out[:, :1]), out[:, 1:]], dim=1)
