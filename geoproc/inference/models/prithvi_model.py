"""Prithvi-EO-2.0-style encoder (temporal ViT, 3-D patch embedding) + a segmentation head.

Why a port and not terratorch: terratorch pulls in lightning, torchgeo and torchvision
(via timm), and torchvision has no build for this project's torch wheel; the encoder is
small enough to carry. This is a re-implementation, in plain torch, of the encoder in
``prithvi_mae.py`` published with Prithvi-EO-2.0 (IBM / NASA, Apache-2.0;
https://huggingface.co/ibm-nasa-geospatial/Prithvi-EO-2.0-300M and
``terratorch/models/backbones/prithvi_mae.py``). It keeps that file's module and
state-dict names (``encoder.patch_embed.proj``, ``encoder.cls_token``,
``encoder.pos_embed``, ``encoder.blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``,
``encoder.norm``, ``encoder.temporal_embed_enc.scale``, ``encoder.location_embed_enc.scale``;
the transformer block follows timm's ``Block`` with ``qkv_bias=True``), so the published
``encoder.*`` tensors load strictly; ``convert_checkpoint`` turns the published ``.pt`` into
the safetensors + MLM card the registry loads.

Differences from the original, on purpose:

- No MAE decoder and no random masking: inference runs the whole token sequence, as the
  original's ``forward_features`` does.
- The optional temporal / location encodings exist (same names, same sin-cos formulas) but
  the engine passes no dates or coordinates, so they are not added (as in the original
  when ``temporal_coords`` / ``location_coords`` are None).
- Positional embeddings for an input grid other than the trained one: the stored (fixed
  sin-cos) table is sliced in time and resized bicubically in space (the original's
  ``interpolate_pos_encoding``); more frames than trained get the sin-cos formula directly.
- Inputs whose height or width is not a multiple of the patch size are zero-padded (0 is
  the band mean after the card's z-score) and the output cropped, instead of ignoring the
  border.
- The segmentation head is ours (published Prithvi weights carry none): last-layer tokens
  averaged over time, 1x1 conv, bilinear upsampling by the patch size, 3x3 conv, GELU, 1x1
  conv to the classes. Fine-tune it (or export your own head under ``head.*``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from geoproc.inference.architectures import register_architecture


def sincos_1d(dim: int, pos: np.ndarray) -> np.ndarray:
    """(M, dim) sin-cos embedding of positions (MAE / Prithvi formula, base 10000)."""
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.outer(pos.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_3d(dim: int, grid: tuple[int, int, int], *, cls_token: bool = False) -> np.ndarray:
    """(t*h*w [+1], dim) table: w, h, t parts of 6/16, 6/16, 4/16 of ``dim``, t-major order."""
    if dim % 16:
        raise ValueError(f"embed_dim {dim} must be a multiple of 16")
    t, h, w = grid
    w_emb = np.tile(sincos_1d(dim // 16 * 6, np.arange(w)), (t * h, 1))
    h_emb = np.tile(np.repeat(sincos_1d(dim // 16 * 6, np.arange(h)), w, axis=0), (t, 1))
    t_emb = np.repeat(sincos_1d(dim // 16 * 4, np.arange(t)), h * w, axis=0)
    table = np.concatenate([w_emb, h_emb, t_emb], axis=1)
    if cls_token:
        table = np.concatenate([np.zeros((1, dim)), table], axis=0)
    return table


def _sincos_torch(dim: int, pos: torch.Tensor) -> torch.Tensor:
    omega = torch.arange(dim // 2, dtype=pos.dtype, device=pos.device) / (dim / 2.0)
    out = torch.outer(pos.reshape(-1), 1.0 / 10000**omega)
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


class PatchEmbed(nn.Module):
    """Non-overlapping 3-D patches (tubelet x patch x patch) projected by one Conv3d."""

    def __init__(
        self,
        input_size: tuple[int, int, int],
        patch_size: tuple[int, int, int],
        in_chans: int,
        embed_dim: int,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.patch_size = patch_size
        self.grid_size = [s // p for s, p in zip(input_size, patch_size, strict=True)]
        self.num_patches = math.prod(self.grid_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))  # B, L, D


class _CoordEncoder(nn.Module):
    """Sin-cos encoding of two coordinates (year, day) or (lat, lon), times a scale."""

    def __init__(self, embed_dim: int, trainable_scale: bool) -> None:
        super().__init__()
        self.first_dim = embed_dim // 2
        self.second_dim = embed_dim - self.first_dim
        if trainable_scale:
            self.scale = nn.Parameter(torch.full((1,), 0.1))
        else:
            self.register_buffer("scale", torch.ones(1))

    def encode(self, a: torch.Tensor, b: torch.Tensor, shape: tuple) -> torch.Tensor:
        emb = [_sincos_torch(self.first_dim, a).reshape(shape),
               _sincos_torch(self.second_dim, b).reshape(shape)]  # fmt: skip
        return self.scale * torch.cat(emb, dim=-1)


class TemporalEncoder(_CoordEncoder):
    """Year and day-of-year per frame, (B, T, 2) -> (B, T * tokens_per_frame, D)."""

    def forward(self, coords: torch.Tensor, tokens_per_frame: int) -> torch.Tensor:
        shape = (*coords.shape[:2], -1)
        emb = self.encode(coords[:, :, 0].flatten(), coords[:, :, 1].flatten(), shape)
        return torch.repeat_interleave(emb, tokens_per_frame, dim=1)


class LocationEncoder(_CoordEncoder):
    """Latitude and longitude per sample, (B, 2) -> (B, 1, D)."""

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.encode(coords[:, 0], coords[:, 1], (coords.shape[0], 1, -1))


class Attention(nn.Module):
    """timm's multi-head self-attention (fused qkv, scaled dot product)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block (timm ``Block``: no layer scale, no drop path at inference)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PrithviViT(nn.Module):
    """The Prithvi encoder: 3-D patch embedding, fixed 3-D sin-cos positions, ViT blocks."""

    def __init__(
        self,
        *,
        img_size: int = 224,
        patch_size: tuple[int, int, int] = (1, 16, 16),
        num_frames: int = 4,
        in_chans: int = 6,
        embed_dim: int = 1024,
        depth: int = 24,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        norm_eps: float = 1e-5,
        coords_encoding: list[str] | None = None,
        coords_scale_learn: bool = False,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(
            (num_frames, img_size, img_size), tuple(patch_size), in_chans, embed_dim
        )
        coords_encoding = coords_encoding or []
        if "time" in coords_encoding:
            self.temporal_embed_enc = TemporalEncoder(embed_dim, coords_scale_learn)
        if "location" in coords_encoding:
            self.location_embed_enc = LocationEncoder(embed_dim, coords_scale_learn)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        table = sincos_3d(embed_dim, tuple(self.patch_embed.grid_size), cls_token=True)
        self.register_buffer("pos_embed", torch.from_numpy(table).float().unsqueeze(0))
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, norm_eps) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self._init_weights()

    def _init_weights(self) -> None:
        """The original's initialisation (xavier for linear layers and the patch projection)."""
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def positions(self, grid: tuple[int, int, int]) -> torch.Tensor:
        """(1, t*h*w, D) positional embedding for a token grid, from the stored table."""
        gt, gh, gw = self.patch_embed.grid_size
        t, h, w = grid
        table = self.pos_embed[:, 1:]
        if t > gt:
            fresh = sincos_3d(self.embed_dim, (t, gh, gw))
            table = torch.from_numpy(fresh).to(table).unsqueeze(0)
            gt = t
        table = table.reshape(gt, gh, gw, self.embed_dim)[:t]
        if (h, w) != (gh, gw):
            table = F.interpolate(
                table.permute(0, 3, 1, 2), size=(h, w), mode="bicubic", align_corners=True
            ).permute(0, 2, 3, 1)
        return table.reshape(1, t * h * w, self.embed_dim)

    def forward_features(
        self,
        x: torch.Tensor,
        temporal_coords: torch.Tensor | None = None,
        location_coords: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, 1 + tokens, D), normed last layer, cls token first."""
        pt, ph, pw = self.patch_embed.patch_size
        grid = (x.shape[2] // pt, x.shape[3] // ph, x.shape[4] // pw)
        tokens = self.patch_embed(x) + self.positions(grid)
        if temporal_coords is not None and hasattr(self, "temporal_embed_enc"):
            tokens = tokens + self.temporal_embed_enc(temporal_coords, grid[1] * grid[2])
        if location_coords is not None and hasattr(self, "location_embed_enc"):
            tokens = tokens + self.location_embed_enc(location_coords)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)


class SegmentationHead(nn.Module):
    """Tokens -> per-pixel class scores at the input resolution."""

    def __init__(self, embed_dim: int, n_classes: int, patch: int, channels: int) -> None:
        super().__init__()
        self.patch = patch
        self.reduce = nn.Conv2d(embed_dim, channels, 1)
        self.refine = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.GELU()
        self.classify = nn.Conv2d(channels, n_classes, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.reduce(features), scale_factor=self.patch, mode="bilinear")
        return self.classify(self.act(self.refine(x)))


class PrithviSegmenter(nn.Module):
    """Prithvi encoder + segmentation head: (B, C, T, H, W) -> (B, n_classes, H, W)."""

    def __init__(
        self,
        *,
        in_chans: int = 6,
        num_frames: int = 4,
        img_size: int = 224,
        patch_size: list[int] | tuple[int, int, int] = (1, 16, 16),
        embed_dim: int = 1024,
        depth: int = 24,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        norm_eps: float = 1e-5,
        coords_encoding: list[str] | None = None,
        coords_scale_learn: bool = False,
        n_classes: int = 2,
        head_channels: int = 64,
    ) -> None:
        super().__init__()
        patch = tuple(int(p) for p in patch_size)
        if patch[1] != patch[2]:
            raise TypeError(f"patch_size {patch} must have equal height and width")
        self.encoder = PrithviViT(
            img_size=img_size,
            patch_size=patch,  # type: ignore[arg-type]
            num_frames=num_frames,
            in_chans=in_chans,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            norm_eps=norm_eps,
            coords_encoding=coords_encoding,
            coords_scale_learn=coords_scale_learn,
        )
        self.head = SegmentationHead(embed_dim, n_classes, patch[1], head_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:  # a single scene: one frame
            x = x.unsqueeze(2)
        pt, p, _ = self.encoder.patch_embed.patch_size
        t, h, w = x.shape[2:]
        pad = (0, -w % p, 0, -h % p, 0, -t % pt)
        if any(pad):
            x = F.pad(x, pad)
        tokens = self.encoder.forward_features(x)[:, 1:]
        gt, gh, gw = x.shape[2] // pt, x.shape[3] // p, x.shape[4] // p
        grid = tokens.reshape(x.shape[0], gt, gh, gw, -1).mean(dim=1)  # average over time
        return self.head(grid.permute(0, 3, 1, 2).contiguous())[..., :h, :w]


register_architecture("PrithviSegmenter", PrithviSegmenter)


def convert_checkpoint(
    checkpoint: Path, *, head: dict[str, torch.Tensor] | None = None, **hyperparameters
) -> dict[str, torch.Tensor]:
    """Published Prithvi ``.pt`` (+ a fine-tuned ``head.*``) -> a state dict for this model.

    The ``.pt`` is read with ``weights_only=True`` (tensors only, no code runs). Its
    ``encoder.*`` tensors are kept (MAE ``decoder.*`` ones dropped); a missing head is
    initialised from seed 0 and must be fine-tuned before its output means anything.
    """
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    encoder = {k: v for k, v in state.items() if k.startswith("encoder.")}
    torch.manual_seed(0)
    model = PrithviSegmenter(**hyperparameters)
    merged = {k: v for k, v in model.state_dict().items() if k.startswith("head.")}
    merged.update(head or {})
    merged.update(encoder)
    return {k: v.detach().contiguous() for k, v in merged.items()}
