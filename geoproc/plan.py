"""What a request will cost, worked out before any search or pixel read.

Why: a continent over decades is hundreds of thousands of tiles and millions of time steps;
an operator must see the size (and a run must refuse an accidental one) in a second, not
after enumerating tiles for minutes. Everything here is arithmetic on the grid, the revisit
cycles of the sensors and the project's own benchmark figures (README, "Benchmarks").

Assumptions, stated once (every figure below inherits them):

* one acquisition per tile per revisit cycle (`REVISIT`); overlap between neighbouring
  orbits or granules (more looks at high latitude) is not counted, same-day granules merge
  into one step (the cube's same-solar-day mosaic), `--max-cloud-cover` is not applied
  (optical steps above the limit are dropped by the search, so real counts can only be lower);
* bytes are uncompressed: the windows read from each asset in its stored dtype, and the
  cube / product / COG arrays in their stored dtypes; DEFLATE/Zstd make real transfers and
  stores smaller, so these are upper bounds;
* CPU time scales linearly with pixels, at the rates the README's benchmarks measured on a
  2-vCPU machine (both cores busy, so CPU-seconds = 2 x wall seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from geoproc.errors import UsageError


@dataclass(frozen=True)
class Revisit:
    """How often a collection sees the same tile."""

    days: float
    """Days between acquisitions of one tile (all platforms and orbit directions together)."""
    basis: str
    """Where the figure comes from."""


REVISIT: dict[str, Revisit] = {
    "HLSL30_2.0": Revisit(8.0, "Landsat 8 + Landsat 9, 16-day repeat each, offset 8 days"),
    "landsat-c2-l2": Revisit(8.0, "Landsat 8 + Landsat 9, 16-day repeat each, offset 8 days"),
    "HLSS30_2.0": Revisit(5.0, "Sentinel-2A + 2B, 10-day repeat each (5 days at the equator)"),
    "sentinel-2-l2a": Revisit(5.0, "Sentinel-2A + 2B, 10-day repeat each (5 days at the equator)"),
    "sentinel-1-rtc": Revisit(
        6.0, "Sentinel-1 IW, 12-day repeat per orbit direction, ascending + descending"
    ),
}
"""Revisit per collection id (aliases resolve through the sensor profiles)."""

CUBE_INPUT_MPX_PER_S = 37.1
"""README "Benchmarks", `geoproc bench cube`, row (c): geoproc build, 37.1 input Mpx/s
(asset pixels read, masked, harmonised, mosaicked and written) on 2 vCPU."""
CUBE_PEAK_MIB = 287.0
"""README "Benchmarks": a 4-tile cube build peaks at 287 MiB (tests/cube/test_cube_memory.py)."""
INFER_MPX_PER_S = {1024: 0.663, 2048: 0.894}
"""README "Benchmarks", `geoproc bench infer`: engine Zarr->Zarr Mpx/s per tile side (CPU,
2 threads, reference FCN); taken as the cost of one product over one output time step."""
INFER_PEAK_MIB = {1024: 157.0, 2048: 259.0, 4096: 279.0}
"""README "Benchmarks": engine memory per tile side (279 MiB is the top of the 244-279 MiB
measured at 4096²)."""
BENCH_CPUS = 2
"""Cores busy during the benchmarks (CPU-seconds = wall seconds x this)."""
EXACT_TILE_LIMIT = 2_000
"""Up to this many tiles the plan enumerates them exactly; above, it uses the estimate."""

_DTYPE_BYTES = {"uint8": 1, "int8": 1, "int16": 2, "uint16": 2, "float32": 4, "float64": 8}


def revisit_for(collection: str) -> Revisit:
    """The revisit of a collection id or alias; unknown ones are a usage error."""
    from geoproc.catalog.sensors import profile_for

    profile = profile_for(collection)
    if profile.collection not in REVISIT:
        raise UsageError(
            f"--collections {collection!r}: no revisit cycle known for planning; use one of "
            f"{', '.join(REVISIT)}."
        )
    return REVISIT[profile.collection]


def expected_acquisitions(collection: str, start: date, end: date) -> int:
    """Acquisitions of one tile between start and end (inclusive), from the revisit cycle."""
    days = (end - start).days + 1
    return max(1, math.floor(days / revisit_for(collection).days))


def tile_steps_bound(
    aoi: Any,
    start: date,
    end: date,
    collections: tuple[str, ...],
    *,
    tile_size_px: int,
    resolution: float,
) -> tuple[int, int]:
    """(tiles, tiles x expected time steps) of a request, without enumerating tiles."""
    from geoproc.grid import estimate_tile_count

    tiles = estimate_tile_count(aoi, tile_size_px=tile_size_px, resolution=resolution)
    steps = sum(expected_acquisitions(c, start, end) for c in collections)
    return tiles, tiles * steps


class PlanTooLargeError(UsageError):
    """A request implies more tiles or tile-steps than the configured limit."""


def check_request_size(
    aoi: Any,
    start: date,
    end: date,
    collections: tuple[str, ...],
    *,
    tile_size_px: int,
    resolution: float,
) -> tuple[int, int]:
    """(tiles, tile-steps), or `PlanTooLargeError` naming --aoi/--start/--end and the count."""
    from geoproc.settings import get_settings

    settings = get_settings()
    tiles, tile_steps = tile_steps_bound(
        aoi, start, end, collections, tile_size_px=tile_size_px, resolution=resolution
    )
    shown = str(aoi) if len(str(aoi)) <= 60 else str(aoi)[:57] + "..."
    advice = (
        "pass a smaller --aoi or a shorter --start/--end range (or split the request; "
        "`geoproc plan` with the same arguments shows the estimate)"
    )
    if tiles > settings.max_plan_tiles:
        raise PlanTooLargeError(
            f"--aoi {shown} implies about {tiles:,} processing tiles of {tile_size_px} px, "
            f"over the limit of {settings.max_plan_tiles:,}: {advice}, or raise "
            "GEOPROC_MAX_PLAN_TILES."
        )
    if tile_steps > settings.max_plan_tile_steps:
        raise PlanTooLargeError(
            f"--aoi {shown} with --start {start} --end {end} implies about {tile_steps:,} "
            f"tile time steps ({tiles:,} tiles), over the limit of "
            f"{settings.max_plan_tile_steps:,}: {advice}, or raise GEOPROC_MAX_PLAN_TILE_STEPS."
        )
    return tiles, tile_steps


def _band_bytes(profile) -> int:
    """Bytes per pixel of one acquisition: every data band in its stored dtype, plus QA."""
    data = sum(_DTYPE_BYTES.get(b.dtype, 4) for b in profile.bands)
    return data + (1 if profile.qa is not None else 0)


def _by_tile_side(table: dict[int, float], side: int) -> float:
    """The benchmark figure at the smallest measured tile side >= side (else the largest)."""
    for key in sorted(table):
        if side <= key:
            return table[key]
    return table[max(table)]


def _product_outputs(product: str):
    """(SPEC, bytes per pixel of one output step) of a product."""
    from geoproc.product_registry import product_spec

    spec = product_spec(product)
    return spec, sum(_DTYPE_BYTES.get(v.dtype, 4) for v in spec.outputs)


def _feeds(spec, bands: set[str]) -> bool:
    """A collection feeds a product when it has all its required inputs (or, with none
    required, any optional one)."""
    if spec.required_inputs:
        return set(spec.required_inputs) <= bands
    return bool(set(spec.optional_inputs) & bands)


def plan_request(
    *,
    products: tuple[str, ...],
    aoi: Any,
    start: date,
    end: date,
    collections: tuple[str, ...],
    tile_size_px: int,
    resolution: float,
) -> dict[str, Any]:
    """The plan of a request: tiles, acquisitions, bytes, CPU-hours and memory (see module doc)."""
    from geoproc.catalog.sensors import profile_for
    from geoproc.grid import estimate_tile_count, tiles_for_aoi
    from geoproc.settings import get_settings

    estimate = estimate_tile_count(aoi, tile_size_px=tile_size_px, resolution=resolution)
    exact = estimate <= EXACT_TILE_LIMIT
    tiles = (
        len(tiles_for_aoi(aoi, tile_size_px=tile_size_px, resolution=resolution))
        if exact
        else estimate
    )
    px = tile_size_px * tile_size_px
    mpx = px / 1e6
    collections_out: dict[str, Any] = {}
    steps_total = 0
    input_bytes = cube_bytes = input_asset_mpx = 0.0
    bands_of: dict[str, set[str]] = {}
    for c in collections:
        profile = profile_for(c)
        n = expected_acquisitions(c, start, end)
        per_step = _band_bytes(profile) * px
        assets = len(profile.bands) + (1 if profile.qa is not None else 0)
        collections_out[c] = {
            "acquisitions_per_tile": n,
            "revisit_days": revisit_for(c).days,
            "assumption": revisit_for(c).basis,
            "input_bytes_per_tile": n * per_step,
        }
        bands_of[c] = {b.name for b in profile.bands}
        steps_total += n
        input_bytes += tiles * n * per_step
        cube_bytes += (
            tiles * n * per_step
        )  # the cube stores the same dtypes (int16 packed, QA uint8)
        input_asset_mpx += tiles * n * assets * mpx
    products_out: dict[str, Any] = {}
    product_bytes = cog_bytes = product_step_mpx = 0.0
    years = end.year - start.year + 1
    for p in products:
        spec, per_px = _product_outputs(p)
        if spec.temporal == "series":
            steps = years
        else:
            steps = sum(
                collections_out[c]["acquisitions_per_tile"]
                for c in collections
                if _feeds(spec, bands_of[c])
            )
        products_out[p] = {"output_steps_per_tile": steps, "bytes_per_pixel_step": per_px}
        product_bytes += tiles * steps * px * per_px
        cog_bytes += tiles * steps * px * per_px  # one COG per output step, same dtypes
        product_step_mpx += tiles * steps * mpx
    cube_cpu_h = input_asset_mpx / CUBE_INPUT_MPX_PER_S * BENCH_CPUS / 3600
    infer_rate = _by_tile_side(INFER_MPX_PER_S, tile_size_px)
    product_cpu_h = product_step_mpx / infer_rate * BENCH_CPUS / 3600
    settings = get_settings()
    return {
        "tiles": tiles,
        "tiles_exact": exact,
        "tile_size_px": tile_size_px,
        "resolution_m": resolution,
        "days": (end - start).days + 1,
        "time_steps_per_tile": steps_total,
        "tile_steps": tiles * steps_total,
        "collections": collections_out,
        "products": products_out,
        "input_bytes": int(input_bytes),
        "output_bytes": {
            "cube_zarr": int(cube_bytes),
            "product_zarr": int(product_bytes),
            "cog": int(cog_bytes),
        },
        "cpu_hours": {
            "cube": round(cube_cpu_h, 3),
            "products": round(product_cpu_h, 3),
            "total": round(cube_cpu_h + product_cpu_h, 3),
        },
        "gpu_hours": None,
        "peak_memory_mib_per_worker": {
            "cube": CUBE_PEAK_MIB,
            "products": _by_tile_side(INFER_PEAK_MIB, tile_size_px),
        },
        "limits": {
            "max_plan_tiles": settings.max_plan_tiles,
            "max_plan_tile_steps": settings.max_plan_tile_steps,
            "within": tiles <= settings.max_plan_tiles
            and tiles * steps_total <= settings.max_plan_tile_steps,
        },
    }
