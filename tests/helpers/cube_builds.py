"""A small HLS L30 archive and one-call cube builds on it, shared by cube and product tests.

Several test modules need the same persisted cube (build, damage, verify, run a product on
it); keeping the recipe here means they all build exactly the same store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geoproc.cube.assemble import CubeOptions
from geoproc.cube.store import build_cubes
from tests.helpers.cube_items import TILE, make_item

OPTS = CubeOptions(bands=("green", "red", "lwir11"))


def make_archive(root: Path, n: int = 6) -> Path:
    """`n` L30 items, 28 days apart from 2024-01-15, with ~20 % cloud; returns the items folder."""
    rng = np.random.default_rng(0)
    for i in range(n):
        fmask = np.where(rng.random((80, 80)) < 0.2, 2, 0).astype(np.uint8)
        bands = {"B03": rng.integers(0, 3000, (80, 80)).astype(np.int16),
                 "B04": rng.integers(0, 3000, (80, 80)).astype(np.int16),
                 "B10": rng.integers(1000, 3000, (80, 80)).astype(np.int16)}  # fmt: skip
        make_item(root, f"L30_{i:02d}", datetime=f"{np.datetime64('2024-01-15') + 28 * i}T10:20:30Z", bands=bands, fmask=fmask,
                  properties={"geoproc:atmosphere": {"lwir11": {"transmittance": 0.5 + i / 100}, "water_vapour": 1.0 + i}})  # fmt: skip
    return root / "items"


def build_cube(catalog, out, end: str = "2024-12-31", **kw) -> dict:
    """Build the test tile's cube from `catalog` into `out` (2024-01-01..`end`); the build record."""
    return build_cubes(
        str(catalog),
        collections=["HLSL30_2.0"],
        aoi=TILE.id,
        start="2024-01-01",
        end=end,
        out=str(out),
        tile_size_px=64,
        options=OPTS,
        **kw,
    )


def cube_path(out: Path) -> Path:
    """Where `build_cube` writes the test tile's store under `out`."""
    return out / "cubes" / f"{TILE.id}.zarr"
