"""Full-size HLS S30-like granules for `geoproc bench cube --granules full` (cached on disk).

Why generated: the benchmark must run offline, and what decides cube-build speed on real
archives is the file shape (1830²+ px COGs, int16 deflate, 512² internal blocks, 7 files
per date read through windows), not the pixel values. The values are smooth fields plus
noise (so deflate works as hard as on land surfaces), an Fmask with cloud, shadow and water
bits and aerosol levels, and on every third date a no-data corner (a swath edge).

Layout under the cache folder: ``items/*.json`` (STAC items with proj:* and raster:bands,
so stackstac and odc-stac need not open files to plan), ``data/ID/ID.KEY.tif``, ``aoi.json``
(the two tiles: one inside the granule, one across its east edge) and ``COMPLETE`` written
last, so an interrupted generation is redone instead of half reused.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import numpy as np

GRANULE_EPSG = 32632
GRANULE_X0 = 300000.0  # a 30 m multiple, not a tile or 512-block boundary
GRANULE_Y1 = 5000040.0
RESOLUTION = 30.0
TILE_SIZE_PX = 1024
TILE_INSIDE = "32N_0010_0161"  # 307200..337920 E, 4945920..4976640 N: inside the granule
TILE_ACROSS = "32N_0011_0161"  # 337920..368640 E: crosses the granule's east edge
COLLECTION = "HLSS30_2.0"
REFLECTANCE_ASSETS = ("B02", "B03", "B04", "B8A", "B11", "B12")
QA_ASSET = "Fmask"
FORMAT_VERSION = 1


def cache_folder(root: Path, size_px: int, dates: int) -> Path:
    return root / f"hls-s30-{size_px}px-{dates}d-v{FORMAT_VERSION}"


def ensure_granules(root: Path, *, size_px: int = 1830, dates: int = 12) -> Path:
    """The cached granule archive, generated when missing or incomplete; returns its folder."""
    folder = cache_folder(root, size_px, dates)
    if (folder / "COMPLETE").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "items").mkdir(parents=True)
    days = [date(2024, 3, 2) + timedelta(days=5 * k) for k in range(dates)]
    jobs = []
    for k, day in enumerate(days):
        item_id = f"HLS.S30.T32TMT.{day.year}{day.timetuple().tm_yday:03d}T103021.v2.0"
        jobs.append((folder, item_id, day, k, size_px))
    # GDAL releases the GIL while compressing: two threads use both cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        items = list(pool.map(lambda job: _write_granule(*job), jobs))
    for item in items:
        (folder / "items" / f"{item['id']}.json").write_text(json.dumps(item))
    (folder / "aoi.json").write_text(
        json.dumps(
            {
                "tiles": [TILE_INSIDE, TILE_ACROSS],
                "tile_size_px": TILE_SIZE_PX,
                "resolution": RESOLUTION,
                "start": str(days[0]),
                "end": str(days[-1]),
                "collection": COLLECTION,
            }
        )
    )
    (folder / "COMPLETE").write_text("ok\n")
    return folder


def _smooth(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """A smooth random field in [0, 1): bilinear upsampling of a coarse random grid."""
    from scipy.ndimage import zoom

    coarse = rng.random((cells, cells)).astype(np.float32)
    field = zoom(coarse, size / cells, order=1)[:size, :size]
    return field


def _write_granule(folder: Path, item_id: str, day: date, k: int, size: int) -> dict:
    import rasterio
    from affine import Affine

    rng = np.random.default_rng(1000 + k)
    transform = Affine(RESOLUTION, 0.0, GRANULE_X0, 0.0, -RESOLUTION, GRANULE_Y1)
    land = _smooth(rng, size, 24)
    cloud = _smooth(rng, size, 12) > 0.72
    water = land < 0.12
    shadow = np.roll(cloud, (40, 40), axis=(0, 1)) & ~cloud
    nodata = np.zeros((size, size), bool)
    if k % 3 == 0:  # a swath edge: the granule's west corner holds no data
        rows, cols = np.indices((size, size))
        nodata = cols < (size // 3 - rows // 3)
    fmask = np.full((size, size), 64, np.uint8)  # aerosol level "low" (bits 6-7 = 01)
    fmask[water] |= 1 << 5
    fmask[cloud] |= 1 << 1
    fmask[shadow] |= 1 << 3
    fmask[nodata] = 255
    out = folder / "data" / item_id
    out.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "COG",
        "width": size,
        "height": size,
        "count": 1,
        "crs": f"EPSG:{GRANULE_EPSG}",
        "transform": transform,
        "compress": "DEFLATE",
        "blocksize": 512,
    }
    assets = {}
    for b, key in enumerate(REFLECTANCE_ASSETS):
        base = 400 + 2600 * land * (0.6 + 0.15 * b)
        values = base + rng.normal(0.0, 60.0, (size, size)).astype(np.float32)
        values = np.where(cloud, 6000 + 400 * b, values)
        dn = np.clip(values, -100, 16000).astype(np.int16)
        dn[nodata] = -9999
        path = out / f"{item_id}.{key}.tif"
        with rasterio.open(path, "w", dtype="int16", nodata=-9999, **profile) as dst:
            dst.write(dn, 1)
        assets[key] = _asset(path, "int16", -9999, 0.0001, size, transform)
    path = out / f"{item_id}.{QA_ASSET}.tif"
    with rasterio.open(path, "w", dtype="uint8", nodata=255, **profile) as dst:
        dst.write(fmask, 1)
    assets[QA_ASSET] = _asset(path, "uint8", 255, 1.0, size, transform)
    return _item(item_id, day, float(100.0 * cloud.mean()), assets, size, transform)


def _asset(path: Path, dtype: str, nodata, scale: float, size: int, transform) -> dict:
    return {
        "href": str(path),
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "roles": ["data"],
        "proj:shape": [size, size],
        "proj:transform": list(transform)[:6],
        "raster:bands": [{"data_type": dtype, "nodata": nodata, "scale": scale}],
    }


def _item(item_id: str, day: date, cloud_cover: float, assets: dict, size: int, transform) -> dict:
    from pyproj import Transformer
    from shapely.geometry import box, mapping
    from shapely.ops import transform as shp_transform

    x0, y1 = transform.c, transform.f
    x1, y0 = x0 + size * RESOLUTION, y1 - size * RESOLUTION
    to_ll = Transformer.from_crs(GRANULE_EPSG, 4326, always_xy=True)
    geom = shp_transform(to_ll.transform, box(x0, y0, x1, y1).segmentize(5000))
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
        ],
        "id": item_id,
        "collection": COLLECTION,
        "geometry": mapping(geom),
        "bbox": list(geom.bounds),
        "properties": {
            "datetime": f"{day.isoformat()}T10:30:21Z",
            "platform": "sentinel-2a",
            "eo:cloud_cover": round(cloud_cover, 2),
            "proj:epsg": GRANULE_EPSG,
            "proj:shape": [size, size],
            "proj:transform": list(transform)[:6],
        },
        "assets": assets,
        "links": [],
    }
