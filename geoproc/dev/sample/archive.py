"""Entry point: generate the whole sample archive (STAC + COGs + truth) for a seed and size.

Layout (a contract other modules build against)::

    aoi.geojson, README.md, collections/{collection}.json,
    items/{collection}/{item_id}.json, data/{collection}/{item_id}/{item_id}.{asset}.tif,
    truth/index.json, truth/{landcover,canopy_class,canopy_cover}/{granule}.tif,
    truth/flood/{granule}/{YYYY-MM-DD}.tif, truth/lst/{item_id}.tif,
    truth/emissivity/{item_id}.tif, truth/clouds/{item_id}.tif, .complete.json (written last)

Work is split into (acquisition, zone) tasks run on a process pool (each worker rebuilds
the static world, which takes well under a second); every random draw is keyed by seed
and acquisition, so the bytes do not depend on the number of workers or their order.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from geoproc.catalog.sensors import FMASK_BITS, FMASK_NODATA, profile_for
from geoproc.dev.sample.clouds import CLOUD_TRUTH_CODES, TRUTH_NODATA
from geoproc.dev.sample.flood import FLOOD_CODES, FLOOD_END, FLOOD_START, flood_truth
from geoproc.dev.sample.items import (
    ITEM_ASSET_PATTERN,
    build_collection,
    build_item,
    item_id,
)
from geoproc.dev.sample.region import RESOLUTION, Region, ZoneGrid, build_region, size_config
from geoproc.dev.sample.render import Rendered, render_optical, render_sar
from geoproc.dev.sample.scene import CANOPY_CODES, LANDCOVER_CODES, World, build_world
from geoproc.dev.sample.schedule import END, START, Acquisition, acquisitions
from geoproc.dev.sample.writer import write_cog
from geoproc.errors import StoreError, UsageError

log = logging.getLogger(__name__)

GENERATOR_VERSION = "3"
COLLECTIONS = ("HLSL30_2.0", "HLSS30_2.0", "sentinel-1-rtc")
_OUTPUT_DIRS = ("collections", "items", "data", "truth")
_MARKER = ".complete.json"

# Region, worlds and output settings of the archive being written, built once per process.
_STATE: dict = {}


def _init_state(size: str, seed: int, out: str) -> None:
    region = build_region(size)
    _STATE.update(
        region=region,
        worlds={z.zone: build_world(*z.local_km, seed=seed) for z in region.zones},
        seed=seed,
        out=Path(out),
        blocksize=size_config(size).blocksize,
        dates=sorted({a.date for a in acquisitions()}),
    )


def create_archive(
    out_dir: str | os.PathLike, *, seed: int = 0, size: str = "small", workers: int | None = None
) -> Path:
    """Generate the sample archive into `out_dir` (or return it untouched if already complete)."""
    config = size_config(size)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"Invalid seed {seed!r}: pass --seed as a non-negative integer.")
    out = Path(out_dir)
    marker = out / _MARKER
    if marker.is_file():
        done = json.loads(marker.read_text())
        if done == _marker_content(seed, config.name):
            return out
        if (done.get("seed"), done.get("size")) != (seed, config.name):
            raise StoreError(
                f"{out} already holds a sample archive with seed {done.get('seed')} and size "
                f"{done.get('size')}: pass another --out, or delete that folder to regenerate."
            )
        log.info("%s was made by generator version %s: regenerating", out, done.get("version"))
        marker.unlink()
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file: pass --out as a folder path.")
    out.mkdir(parents=True, exist_ok=True)
    for sub in _OUTPUT_DIRS:  # leftovers of an interrupted run
        shutil.rmtree(out / sub, ignore_errors=True)

    started = time.perf_counter()
    _init_state(config.name, seed, str(out))
    region, worlds = _STATE["region"], _STATE["worlds"]
    schedule = acquisitions()
    dates = sorted({a.date for a in schedule})
    tasks = [("flood", z.zone, i) for z in region.zones for i in range(0, len(dates), 16)]
    tasks += [(a, z.zone) for a in schedule for z in region.zones]
    n = workers or min(2, os.cpu_count() or 1)
    items: list[dict] = []
    if n > 1:
        # spawn, not fork: safe when the caller runs threads (servers, dask) or holds GDAL handles
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(n, initializer=_init_state, initargs=(config.name, seed, str(out))) as pool:
            for result in pool.imap_unordered(_run_task, tasks, chunksize=2):
                items.extend(result)
    else:
        for task in tasks:
            items.extend(_run_task(task))
    _STATE.clear()

    _write_static_truth(out, region, worlds, config.blocksize)
    _write_items(out, items)
    _write_collections(out, region)
    _write_aoi(out, region, seed)
    _write_truth_index(out, region, dates)
    _write_readme(out, region, seed, items)
    elapsed = time.perf_counter() - started
    log.info(
        "sample archive %s (%s, seed %d): %d items in %.1f s",
        out,
        config.name,
        seed,
        len(items),
        elapsed,
    )
    marker.write_text(json.dumps(_marker_content(seed, config.name), indent=2) + "\n")
    return out


def _marker_content(seed: int, size: str) -> dict:
    return {"seed": seed, "size": size, "version": GENERATOR_VERSION}


def _zone_grid(zone: int) -> ZoneGrid:
    return next(z for z in _STATE["region"].zones if z.zone == zone)


def _run_task(task) -> list[dict]:
    if task[0] == "flood":
        _, zone, first = task
        _write_flood_truth(zone, _STATE["dates"][first : first + 16])
        return []
    acq, zone = task
    return _write_acquisition(acq, _zone_grid(zone), _STATE["worlds"][zone])


def _write_flood_truth(zone: int, dates) -> None:
    grid, world, out, bs = (
        _zone_grid(zone),
        _STATE["worlds"][zone],
        _STATE["out"],
        _STATE["blocksize"],
    )
    dry_files: dict[str, Path] = {}
    for day in dates:
        in_event = FLOOD_START <= day <= FLOOD_END
        truth = flood_truth(world, day)
        for g in grid.granules:
            path = out / "truth" / "flood" / g.name / f"{day.isoformat()}.tif"
            if not in_event and g.name in dry_files:  # identical bytes: copy instead of re-encoding
                shutil.copyfile(dry_files[g.name], path)
                continue
            rows, cols = grid.window(g)
            write_cog(path, truth[rows, cols], g, nodata=None, blocksize=bs, categorical=True)
            if not in_event:
                dry_files[g.name] = path


def _write_acquisition(acq: Acquisition, grid: ZoneGrid, world: World) -> list[dict]:
    seed, out, bs = _STATE["seed"], _STATE["out"], _STATE["blocksize"]
    profile = profile_for(acq.collection)
    if profile.family == "sar":
        rendered = render_sar(acq, grid, world, seed=seed)
    else:
        rendered = render_optical(acq, grid, world, seed=seed)
    items = []
    for g in grid.granules:
        rows, cols = grid.window(g)
        valid = rendered.valid[rows, cols]
        if not valid.any():
            continue
        iid = item_id(acq, g)
        _write_assets(out, acq, g, iid, rendered, rows, cols, bs)
        cloud_cover = None
        if profile.qa is not None:
            qa = rendered.assets[profile.qa.asset][rows, cols]
            bits = (
                (1 << FMASK_BITS["cloud"])
                | (1 << FMASK_BITS["adjacent_cloud"])
                | (1 << FMASK_BITS["cloud_shadow"])
            )
            ok = qa != FMASK_NODATA
            cloud_cover = 100.0 * float(np.count_nonzero((qa & bits)[ok])) / max(int(ok.sum()), 1)
        for name, arr in rendered.truth.items():
            window = arr[..., rows, cols]
            kw = (
                {"nodata": TRUTH_NODATA, "categorical": True}
                if name == "clouds"
                else {"nodata": float("nan")}
            )
            write_cog(out / "truth" / name / f"{iid}.tif", window, g, blocksize=bs, **kw)
        items.append(
            build_item(
                acq,
                g,
                cloud_cover=cloud_cover,
                valid_percent=100.0 * float(valid.mean()),
                sun_zenith=rendered.sun_zenith,
                sun_azimuth=rendered.sun_azimuth,
                extra_properties=rendered.properties,
            )
        )
    return items


def _write_assets(
    out: Path, acq: Acquisition, g, iid: str, rendered: Rendered, rows, cols, bs: int
) -> None:
    profile = profile_for(acq.collection)
    for band in profile.bands:
        path = (
            out
            / "items"
            / acq.collection
            / ITEM_ASSET_PATTERN.format(collection=acq.collection, item_id=iid, asset=band.asset)
        )
        write_cog(
            path.resolve(),
            rendered.assets[band.asset][rows, cols],
            g,
            nodata=band.nodata,
            blocksize=bs,
            descriptions=(band.asset,),
            scale=band.scale,
            offset=band.offset,
        )
    if profile.qa is not None:
        path = (
            out
            / "items"
            / acq.collection
            / ITEM_ASSET_PATTERN.format(
                collection=acq.collection, item_id=iid, asset=profile.qa.asset
            )
        )
        write_cog(
            path.resolve(),
            rendered.assets[profile.qa.asset][rows, cols],
            g,
            nodata=profile.qa.nodata,
            blocksize=bs,
            categorical=True,
            descriptions=(profile.qa.asset,),
        )


def _write_static_truth(out: Path, region: Region, worlds: dict[int, World], bs: int) -> None:
    for grid in region.zones:
        world = worlds[grid.zone]
        layers = {
            "landcover": (world.landcover, 0),
            "canopy_class": (world.canopy_class, None),
            "canopy_cover": (world.canopy_cover.astype(np.uint8), None),
        }
        for g in grid.granules:
            rows, cols = grid.window(g)
            for name, (arr, nodata) in layers.items():
                write_cog(
                    out / "truth" / name / f"{g.name}.tif",
                    arr[rows, cols],
                    g,
                    nodata=nodata,
                    blocksize=bs,
                    categorical=True,
                )


def _dump(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


def _write_items(out: Path, items: list[dict]) -> None:
    for item in sorted(items, key=lambda i: i["id"]):
        _dump(out / "items" / item["collection"] / f"{item['id']}.json", item)


def _region_bbox(region: Region) -> list[float]:
    b = np.array([g.footprint_lonlat().bounds for g in region.granules])
    return [
        round(float(b[:, 0].min()), 6),
        round(float(b[:, 1].min()), 6),
        round(float(b[:, 2].max()), 6),
        round(float(b[:, 3].max()), 6),
    ]


def _write_collections(out: Path, region: Region) -> None:
    for c in COLLECTIONS:
        _dump(
            out / "collections" / f"{c}.json",
            build_collection(
                c, bbox=_region_bbox(region), start=f"{START}T00:00:00Z", end=f"{END}T23:59:59Z"
            ),
        )


def _write_aoi(out: Path, region: Region, seed: int) -> None:
    from shapely.geometry import mapping

    feature = {
        "type": "Feature",
        "geometry": mapping(region.aoi),
        "properties": {
            "name": f"geoproc sample: Alpine foreland across UTM 32/33 ({region.config.name})",
            "tile_size_px": region.config.tile_size_px,
            "resolution": int(RESOLUTION),
            "start": START.isoformat(),
            "end": END.isoformat(),
            "seed": seed,
            "size": region.config.name,
        },
    }
    _dump(out / "aoi.geojson", {"type": "FeatureCollection", "features": [feature]})


def _write_truth_index(out: Path, region: Region, dates) -> None:
    index = {
        "description": "Ground truth of the synthetic archive; never read by the pipeline. Rasters lie on the "
        "granule grids (same CRS, transform and shape as the items of that granule).",
        "granules": {
            g.name: {
                "epsg": g.epsg,
                "transform": list(g.transform),
                "shape": [g.height, g.width],
                "bbox": list(g.bounds),
                "footprint_lonlat": list(g.footprint_lonlat().bounds),
            }
            for g in region.granules
        },
        "processing_tiles": {
            str(zone): {
                "tile_size_px": region.config.tile_size_px,
                "tile_size_m": region.config.tile_size_px * RESOLUTION,
                "tiles": [list(t) for t in tiles],
                "note": "tile (i, j) spans x in [i*T, (i+1)*T), y in [j*T, (j+1)*T) in EPSG:326zz",
            }
            for zone, tiles in region.tiles.items()
        },
        "layers": {
            "landcover": {
                "path": "truth/landcover/{granule}.tif",
                "dtype": "uint8",
                "nodata": 0,
                "codes": {str(k): v for k, v in LANDCOVER_CODES.items()},
            },
            "canopy_class": {
                "path": "truth/canopy_class/{granule}.tif",
                "dtype": "uint8",
                "codes": {str(k): v for k, v in CANOPY_CODES.items()},
            },
            "canopy_cover": {
                "path": "truth/canopy_cover/{granule}.tif",
                "dtype": "uint8",
                "units": "percent",
            },
            "flood": {
                "path": "truth/flood/{granule}/{date}.tif",
                "dtype": "uint8",
                "codes": {str(k): v for k, v in FLOOD_CODES.items()},
                "event": [FLOOD_START.isoformat(), FLOOD_END.isoformat()],
                "dates": [d.isoformat() for d in dates],
            },
            "lst": {
                "path": "truth/lst/{item_id}.tif",
                "dtype": "float32",
                "units": "K",
                "nodata": "nan",
                "items": "every HLSL30_2.0 item",
            },
            "emissivity": {
                "path": "truth/emissivity/{item_id}.tif",
                "dtype": "float32",
                "units": "1",
                "bands": ["lwir11 (B10)", "lwir12 (B11)"],
                "nodata": "nan",
                "items": "every HLSL30_2.0 item",
            },
            "clouds": {
                "path": "truth/clouds/{item_id}.tif",
                "dtype": "uint8",
                "nodata": TRUTH_NODATA,
                "codes": {str(k): v for k, v in CLOUD_TRUTH_CODES.items()},
                "items": "every HLSS30_2.0 and HLSL30_2.0 item",
            },
        },
    }
    _dump(out / "truth" / "index.json", index)


def _write_readme(out: Path, region: Region, seed: int, items: list[dict]) -> None:
    counts = defaultdict(int)
    for it in items:
        counts[it["collection"]] += 1
    granules = ", ".join(
        f"T{g.name} (EPSG:{g.epsg}, {g.width}x{g.height} px)" for g in region.granules
    )
    lines = [
        f"# geoproc sample archive ({region.config.name}, seed {seed})",
        "",
        "Synthetic but physically plausible HLS (L30, S30) and Sentinel-1 RTC archive for 2024 over an",
        "Alpine-foreland landscape straddling the UTM zone 32/33 boundary (12 E, 47.5 N). Not real data.",
        "",
        f"- Granules: {granules}; adjacent granules of a zone overlap (same-day duplicates).",
        f"- Processing tiles: {region.config.tile_size_px} px x 30 m (see aoi.geojson and truth/index.json).",
        "- Items: " + ", ".join(f"{c}: {counts[c]}" for c in COLLECTIONS) + ".",
        "- HLS bands: int16, scale 0.0001, fill -9999; L30 B10/B11 TOA brightness temperature in degC x 100",
        "  (raster:bands scale 0.01, offset 273.15 -> kelvin); Fmask uint8 fill 255, HLS v2.0 bit layout.",
        "- S1: float32 linear gamma0 vv/vh, nodata 0, on the same 30 m grids.",
        "- L30 items carry `geoproc:atmosphere` (tau, Lu, Ld per TIRS band, water vapour) for LST retrieval.",
        "- Flood: river overflow 2024-05-13 .. 2024-06-08, peak 22-27 May, visible in optical and SAR.",
        "- Ground truth in truth/ (see truth/index.json); the pipeline must never read it.",
        "",
        "Regenerate with `geoproc sample create --out DIR --seed N --size small|medium`.",
    ]
    (out / "README.md").write_text("\n".join(lines) + "\n")
