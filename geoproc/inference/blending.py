"""Weighted blending of overlapping model windows, block by block.

Why: cropping a halo makes tiled output equal whole-image output only when the halo covers
the model's receptive field. Transformers (global attention over their window) and models
with global pooling have a receptive field as large as the window, so each window sees a
different context and crop-only tiling leaves seams. The usual remedy (e.g. the weighted
overlap-add of MONAI's ``sliding_window_inference`` and terratorch's tiled inference) is to
run the model on overlapping windows and average their predictions with weights that ramp
down towards each window's edge: ``out = sum(w_i * p_i) / sum(w_i)``. The ramp starts
``halo`` px inside a window edge (weight 0 before it), so the pixels a convolution saw
with zero padding instead of real neighbours never count, and a model whose halo covers
its receptive field gives the whole-image result, blended or not; at the image border,
where whole-image inference pads too, the weight is 1. Over the rest of the overlap the
linear ramps of two neighbours sum to 1 (a partition of unity).

Here the windows lie on one lattice for the whole image (stride ``tile - overlap``; the
last window of a row or column is shifted to end at the image edge, so every window has
the model's tile size). An output block (k x k chunks, the engine's unit of writing and
resuming) runs every lattice window that touches it and keeps only its own pixels, so a
block's bytes depend only on the block: runs are resumable per block, Dask tasks stay
independent, and memory is bounded by the block, never by the tile. Windows that straddle
a block edge are computed once for each block they touch: the cost is about
``(1 + tile / block)`` per axis more forward passes, the price of independent blocks.
Because the lattice is global, the blended image does not depend on the block size (up to
float rounding), which is what "no seams" means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from geoproc.errors import UsageError
from geoproc.inference.kernel import Kernel, ModelKernel, fill_masked, valid_mask

BlendMode = Literal["linear", "cosine", "none"]
BLEND_MODES: tuple[str, ...] = ("linear", "cosine", "none")
DEFAULT_TILE = 256
"""Window side for models whose card names no ``geoproc:tile_size``."""


@dataclass(frozen=True)
class Blend:
    """The window lattice and ramp of one run (fixed by grid, kernel and options)."""

    mode: BlendMode
    tile_y: int
    tile_x: int
    overlap: int
    margin: int
    """Pixels next to an inner window edge that get weight 0 (the kernel's halo)."""
    ny: int
    nx: int
    starts_y: tuple[int, ...]
    starts_x: tuple[int, ...]

    def parameters(self) -> dict:
        """What the product's provenance records (a resume with other values is refused)."""
        return {
            "blend": self.mode,
            "tile": [self.tile_y, self.tile_x],
            "overlap": self.overlap,
            "margin": self.margin,
        }

    def windows_for(self, out_y: tuple[int, int], out_x: tuple[int, int]) -> list[tuple[int, int]]:
        """(y0, x0) of every lattice window that touches the output block, row-major."""
        ys = [s for s in self.starts_y if s < out_y[1] and s + self.tile_y > out_y[0]]
        xs = [s for s in self.starts_x if s < out_x[1] and s + self.tile_x > out_x[0]]
        return [(y, x) for y in ys for x in xs]

    def weights(self, y: int, x: int) -> np.ndarray:
        """(tile_y, tile_x) float32 weights of the window at (y, x): ramps on inner edges only."""
        wy = ramp(self.tile_y, self.overlap, self.mode, margin=self.margin,
                  start_border=y == 0, end_border=y + self.tile_y >= self.ny)  # fmt: skip
        wx = ramp(self.tile_x, self.overlap, self.mode, margin=self.margin,
                  start_border=x == 0, end_border=x + self.tile_x >= self.nx)  # fmt: skip
        return np.outer(wy, wx).astype(np.float32)


def window_starts(n: int, tile: int, overlap: int) -> tuple[int, ...]:
    """Lattice starts along one axis: stride ``tile - overlap``, the last one flush with the edge."""
    if n <= tile:
        return (0,)
    stride = tile - overlap
    return (*range(0, n - tile, stride), n - tile)


def ramp(
    n: int,
    overlap: int,
    mode: BlendMode,
    *,
    margin: int = 0,
    start_border: bool = False,
    end_border: bool = False,
) -> np.ndarray:
    """1-D weights of a window of ``n`` px.

    From an inner edge: 0 for ``margin`` px, then rising over ``overlap - 2 * margin`` px
    (pixel centres, so the first step is > 0) to 1. An edge on the image border: 1.
    """
    idx = np.arange(n, dtype=np.float64)
    length = max(1, overlap - 2 * margin)
    w = np.ones(n)
    for d, border in ((idx, start_border), (idx[::-1], end_border)):
        if not border:
            x = np.clip((d - margin + 0.5) / length, 0.0, 1.0)
            x[d < margin] = 0.0
            w = np.minimum(w, 0.5 - 0.5 * np.cos(np.pi * x) if mode == "cosine" else x)
    return w


def make_blend(
    ny: int,
    nx: int,
    kernel: Kernel,
    *,
    mode: str,
    tile: int | None = None,
    overlap: int | None = None,
) -> Blend | None:
    """The run's lattice, or None for crop-only (``mode == "none"``).

    ``tile`` defaults to the card's ``geoproc:tile_size`` (the size the model was trained
    on), else 256 px clipped to the image; ``overlap`` to max(2 * halo + 1, tile / 4).
    """
    if mode not in BLEND_MODES:
        raise UsageError(f"--blend {mode!r} is not one of {', '.join(BLEND_MODES)}")
    if mode == "none":
        return None
    fixed = getattr(kernel, "tile_size", None)
    if tile is None:
        tile = fixed or DEFAULT_TILE
    if tile < 2:
        raise UsageError(f"--tile {tile} must be at least 2 px")
    # a model with a fixed input size gets padded windows on a small image; others shrink
    tile_y, tile_x = (tile, tile) if fixed else (min(tile, ny), min(tile, nx))
    margin = kernel.halo
    if overlap is None:
        overlap = max(2 * margin + 1, min(tile_y, tile_x) // 4)
    if not 2 * margin < overlap < min(tile_y, tile_x):
        raise UsageError(
            f"--overlap {overlap} must be more than twice the model's halo ({margin} px, the "
            f"pixels next to a window edge that get no weight) and less than the window "
            f"({min(tile_y, tile_x)} px); change --overlap or --tile"
        )
    return Blend(
        mode=mode,  # type: ignore[arg-type]
        tile_y=tile_y,
        tile_x=tile_x,
        overlap=overlap,
        margin=margin,
        ny=ny,
        nx=nx,
        starts_y=window_starts(ny, tile_y, overlap),
        starts_x=window_starts(nx, tile_x, overlap),
    )


def read_region(blend: Blend, out_y: tuple[int, int], out_x: tuple[int, int], ny: int, nx: int):
    """Input rows and columns a block needs: the union of its windows, clipped to the image."""
    wins = blend.windows_for(out_y, out_x)
    y0 = min(y for y, _ in wins)
    x0 = min(x for _, x in wins)
    y1 = min(ny, max(y for y, _ in wins) + blend.tile_y)
    x1 = min(nx, max(x for _, x in wins) + blend.tile_x)
    return (y0, y1), (x0, x1)


def blend_block(
    kernel: Kernel,
    region: np.ndarray,
    *,
    read_y: tuple[int, int],
    read_x: tuple[int, int],
    out_y: tuple[int, int],
    out_x: tuple[int, int],
    blend: Blend,
    batch_bytes: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """One output block from its overlapping windows: {name: (h, w)}, fill where masked.

    ``region`` is (C, H, W) or (C, T, H, W) covering ``read_y`` x ``read_x``. Windows run in
    fixed-size batches in lattice order, so the result is the same on every rerun.
    """
    wins = blend.windows_for(out_y, out_x)
    th, tw = blend.tile_y, blend.tile_x
    depth = region.shape[1] if region.ndim == 4 else 1
    per_window = max(1, th * tw * depth * kernel.bytes_per_pixel)
    size = max(1, batch_bytes // per_window)
    oh, ow = out_y[1] - out_y[0], out_x[1] - out_x[0]
    acc = _Accumulator(kernel, oh, ow)
    for i in range(0, len(wins), size):
        group = wins[i : i + size]
        batch = np.stack([_cut(region, y - read_y[0], x - read_x[0], th, tw) for y, x in group])
        acc.add(batch, group, blend, out_y, out_x, seed=seed + i)
    core = region[..., out_y[0] - read_y[0] : out_y[1] - read_y[0],
                  out_x[0] - read_x[0] : out_x[1] - read_x[0]]  # fmt: skip
    valid = valid_mask(core[None], kernel.temporal)[0]
    return acc.result(valid)


class _Accumulator:
    """Sum of weight x prediction and of weight over one block; divides at the end.

    A ``ModelKernel`` is blended on its raw channels (probabilities / logits), then turned
    into variables, so classes come from the blended scores. Any other kernel is blended
    on its outputs: float variables by weighted mean, integer ones take the value of the
    window with the largest weight at that pixel (a class cannot be averaged).
    """

    def __init__(self, kernel: Kernel, oh: int, ow: int) -> None:
        self.kernel = kernel
        self.channels = isinstance(kernel, ModelKernel)
        self.shape = (oh, ow)
        self.sums: dict[str, np.ndarray] = {}
        self.wsum: dict[str, np.ndarray] = {}

    def add(self, batch, group, blend: Blend, out_y, out_x, *, seed: int) -> None:
        th, tw = blend.tile_y, blend.tile_x
        if self.channels:
            raw = {"_channels": self.kernel.forward(batch)}  # type: ignore[attr-defined]
        else:
            raw = self.kernel(batch, seed=seed)
        for j, (y, x) in enumerate(group):
            # intersection of the window with the block, in block and window coordinates
            by0, by1 = max(y, out_y[0]), min(y + th, out_y[1])
            bx0, bx1 = max(x, out_x[0]), min(x + tw, out_x[1])
            dst = (slice(by0 - out_y[0], by1 - out_y[0]), slice(bx0 - out_x[0], bx1 - out_x[0]))
            src = (slice(by0 - y, by1 - y), slice(bx0 - x, bx1 - x))
            w = blend.weights(y, x)[src]
            for name, arr in raw.items():
                self._add(name, arr[j], w, dst, src)

    def _add(self, name, pred, w, dst, src) -> None:
        pred = pred[(..., *src)]
        if name not in self.sums:
            shape = (*pred.shape[:-2], *self.shape)
            is_float = np.issubdtype(pred.dtype, np.floating)
            self.sums[name] = np.zeros(shape, np.float32 if is_float else pred.dtype)
            self.wsum[name] = np.zeros(self.shape, np.float32)
        if np.issubdtype(self.sums[name].dtype, np.floating):
            finite = np.isfinite(pred)
            self.sums[name][(..., *dst)] += np.where(finite, pred * w, 0).astype(np.float32)
            if pred.ndim == 2:
                self.wsum[name][dst] += np.where(finite, w, 0)
            else:
                self.wsum[name][dst] += w
        else:  # integer output: the most central window wins
            better = w > self.wsum[name][dst]
            self.sums[name][dst] = np.where(better, pred, self.sums[name][dst])
            self.wsum[name][dst] = np.maximum(w, self.wsum[name][dst])

    def result(self, valid: np.ndarray) -> dict[str, np.ndarray]:
        if self.channels:
            with np.errstate(invalid="ignore", divide="ignore"):
                blended = self.sums["_channels"] / self.wsum["_channels"]
            out = self.kernel.outputs_from_channels(blended[None], valid[None])  # type: ignore[attr-defined]
            return {k: v[0] for k, v in out.items()}
        result = {}
        for spec in self.kernel.outputs:
            total, wsum = self.sums[spec.name], self.wsum[spec.name]
            if np.issubdtype(total.dtype, np.floating):
                with np.errstate(invalid="ignore", divide="ignore"):
                    total = np.where(wsum > 0, total / wsum, np.nan)
            result[spec.name] = fill_masked(total, valid, spec)
        return result


def _cut(region: np.ndarray, y: int, x: int, th: int, tw: int) -> np.ndarray:
    """The (…, th, tw) window at (y, x) of the region, NaN (masked) beyond its edge."""
    h, w = region.shape[-2:]
    if y >= 0 and x >= 0 and y + th <= h and x + tw <= w:
        return region[..., y : y + th, x : x + tw]
    out = np.full((*region.shape[:-2], th, tw), np.nan, dtype=region.dtype)
    sy, sx = slice(max(0, y), min(h, y + th)), slice(max(0, x), min(w, x + tw))
    out[..., sy.start - y : sy.stop - y, sx.start - x : sx.stop - x] = region[..., sy, sx]
    return out
