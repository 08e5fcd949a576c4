"""Blocks of a cube for the product stage, sized by a memory budget, run with read-ahead
and write-behind.

Why blocks and not the tile: a product's working set grows with (time x variables x
pixels). Cutting the tile into spatial blocks (every time step, plus the halo the product
declares) or into groups of dates (every pixel) bounds the working set by the budget,
whatever the tile size or series length. Spatial block sides are powers of two that divide
the output chunk, or multiples of it, so a block never straddles chunks unevenly and a
group of blocks covering one output chunk can go to one worker without write races.

The loop overlaps three things, as the inference engine does: a reader thread loads the
next block while the caller's thread computes the current one and a writer thread stores
the previous one. At most one block waits in each stage, so peak memory is about three
blocks, never the tile.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal

_MiB = 1024 * 1024

Axis = Literal["space", "time"]


@dataclass(frozen=True)
class Block:
    """One unit of work: the output region it writes and the input region it reads."""

    axis: Axis
    time: slice
    """Time steps read and written (all of them for a spatial block)."""
    y: slice
    x: slice
    """Output region (the block's core)."""
    read_y: slice
    read_x: slice
    """Input region: the core plus the halo, truncated at the tile edge."""
    year: int | None = None
    """For a yearly product run year by year: the index along the output's `year` it writes
    (``time`` then holds that year's dates only)."""

    @property
    def crop(self) -> dict[str, slice]:
        """Where the core lies inside the input region (to drop the halo)."""
        return {
            "y": slice(self.y.start - self.read_y.start, self.y.stop - self.read_y.start),
            "x": slice(self.x.start - self.read_x.start, self.x.stop - self.read_x.start),
        }

    @property
    def key(self) -> str:
        return f"{self.axis}:{self.time.start}-{self.time.stop}:{self.y.start}-{self.y.stop}:{self.x.start}-{self.x.stop}"


def block_side(
    budget_bytes: int,
    *,
    bytes_per_pixel: float,
    chunk: int,
    halo: int = 0,
    minimum: int = 16,
) -> int:
    """Largest side whose window (with halo) fits the budget: a power-of-two divisor of the
    output chunk, or a multiple of the chunk when even a whole chunk fits."""
    fits = math.isqrt(max(1, int(budget_bytes / max(bytes_per_pixel, 1e-9)))) - 2 * halo
    if fits >= chunk:
        return (fits // chunk) * chunk
    side = chunk
    while side > minimum and side > fits:
        side //= 2
    return max(side, min(minimum, chunk))


def space_blocks(nt: int, ny: int, nx: int, *, side: int, halo: int) -> list[Block]:
    """Row-major spatial blocks of `side` px covering the tile, each with every time step."""
    blocks = []
    for y0 in range(0, ny, side):
        for x0 in range(0, nx, side):
            y1, x1 = min(y0 + side, ny), min(x0 + side, nx)
            blocks.append(
                Block(
                    "space",
                    slice(0, nt),
                    slice(y0, y1),
                    slice(x0, x1),
                    slice(max(0, y0 - halo), min(ny, y1 + halo)),
                    slice(max(0, x0 - halo), min(nx, x1 + halo)),
                )
            )
    return blocks


def date_windows(nt: int, ny: int, nx: int, *, side: int, halo: int, steps: int) -> list[Block]:
    """Spatial windows of `side` px (with `halo`) holding `steps` consecutive dates each:
    for products whose dates are independent, so a window never needs the whole series and
    each 1 x 512² cube chunk is read once (windows of every date shrink as it grows)."""
    return [
        replace(w, time=slice(t0, min(nt, t0 + steps)))
        for t0 in range(0, nt, max(1, steps))
        for w in space_blocks(nt, ny, nx, side=side, halo=halo)
    ]


def time_blocks(nt: int, ny: int, nx: int, *, steps: int) -> list[Block]:
    """Groups of `steps` consecutive dates over the whole tile."""
    whole_y, whole_x = slice(0, ny), slice(0, nx)
    return [
        Block("time", slice(t0, min(nt, t0 + steps)), whole_y, whole_x, whole_y, whole_x)
        for t0 in range(0, nt, max(1, steps))
    ]


def chunk_groups(blocks: list[Block], *, chunk: int) -> list[list[Block]]:
    """Blocks grouped by the output chunk they write, so each group can run on its own
    worker: blocks smaller than a chunk share its bytes and must be written by one writer."""
    groups: dict[tuple[int, int, int], list[Block]] = {}
    for b in blocks:
        groups.setdefault((b.time.start, b.y.start // chunk, b.x.start // chunk), []).append(b)
    return list(groups.values())


@dataclass
class BlockStats:
    """Where the time went (seconds summed per stage) and how many blocks ran."""

    blocks: int = 0
    read_s: float = 0.0
    compute_s: float = 0.0
    write_s: float = 0.0


def run_blocks(
    blocks: Iterable[Block],
    *,
    read: Callable[[Block], Any],
    compute: Callable[[Block, Any], Any],
    write: Callable[[Block, Any], None],
    prefetch: bool = True,
) -> BlockStats:
    """read -> compute -> write every block; with `prefetch` the next read and the previous
    write run in threads while a block computes. Errors surface from the stage that raised."""
    import time

    stats = BlockStats()

    def timed(stage: str, fn: Callable, *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            setattr(stats, stage, getattr(stats, stage) + time.perf_counter() - t0)

    items: Iterator[Block] = iter(blocks)
    if not prefetch:
        for block in items:
            write_data = timed("compute_s", compute, block, timed("read_s", read, block))
            timed("write_s", write, block, write_data)
            stats.blocks += 1
        return stats

    with (
        ThreadPoolExecutor(1, "block-read") as reader,
        ThreadPoolExecutor(1, "block-write") as writer,
    ):
        pending_write: Future | None = None
        current = next(items, None)
        next_read: Future | None = (
            reader.submit(timed, "read_s", read, current) if current else None
        )
        while current is not None:
            data = next_read.result()
            following = next(items, None)
            next_read = reader.submit(timed, "read_s", read, following) if following else None
            result = timed("compute_s", compute, current, data)
            del data
            if pending_write is not None:
                pending_write.result()
            pending_write = writer.submit(timed, "write_s", write, current, result)
            del result
            stats.blocks += 1
            current = following
        if pending_write is not None:
            pending_write.result()
    return stats
