"""Tiny synthetic STAC items + GeoTIFFs for cube tests (no test functions here).

Pixel values encode their own source coordinates (odc-stac style): band B03 holds the
source row index and B04 the source column index (plus 1000), so after warping onto the
tile grid every output pixel says which source pixel it came from.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from shapely.geometry import box, mapping
from shapely.ops import transform as shp_transform

from geoproc.grid import Tile

TILE = Tile(32, False, 260, 2740, tile_size_px=64, resolution=30.0)  # 32N_0260_2740
ENCODE_BASE = 1000


def write_tif(
    path: Path, data: np.ndarray, *, crs, transform: Affine, nodata, descriptions=None
) -> str:
    data = np.atleast_3d(data) if data.ndim == 3 else data[None]
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
        dtype=data.dtype, crs=crs, transform=transform, nodata=nodata, tiled=True,
        blockxsize=32, blockysize=32, compress="deflate",
    ) as dst:  # fmt: skip
        dst.write(data)
        for i, d in enumerate(descriptions or []):
            dst.set_band_description(i + 1, d)
    return str(path)


def footprint(crs, transform: Affine, shape) -> dict:
    h, w = shape
    x0, y0 = transform * (0, 0)
    x1, y1 = transform * (w, h)
    to_ll = Transformer.from_crs(crs, 4326, always_xy=True)
    geom = shp_transform(
        to_ll.transform, box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)).segmentize(100)
    )
    return mapping(geom)


def encoded_bands(shape) -> dict[str, np.ndarray]:
    rows, cols = np.indices(shape, dtype=np.int16)
    return {"B03": rows + ENCODE_BASE, "B04": cols + ENCODE_BASE}


def make_item(
    root: Path,
    item_id: str,
    *,
    collection: str = "HLSL30_2.0",
    datetime: str = "2024-06-01T10:20:30Z",
    crs="EPSG:32632",
    transform: Affine | None = None,
    shape=(80, 80),
    bands: dict[str, np.ndarray] | None = None,
    fmask: np.ndarray | None = None,
    cloud_cover: float | None = 10.0,
    properties: dict | None = None,
    nodata=-9999,
    qa_key: str = "Fmask",
) -> dict:
    """Write one item's GeoTIFFs and JSON under root; return the item dict."""
    if transform is None:
        x0, _, _, y1 = TILE.bounds
        transform = Affine(30.0, 0, x0 - 300.0, 0, -30.0, y1 + 300.0)
    bands = bands if bands is not None else encoded_bands(shape)
    assets = {}
    for key, arr in bands.items():
        href = write_tif(
            root / "data" / item_id / f"{key}.tif", arr, crs=crs, transform=transform, nodata=nodata
        )
        assets[key] = {"href": href, "type": "image/tiff; application=geotiff", "roles": ["data"]}
    if fmask is not None:
        qa_nodata = 255 if qa_key == "Fmask" else 0
        href = write_tif(
            root / "data" / item_id / f"{qa_key}.tif",
            fmask.astype(np.uint8),
            crs=crs,
            transform=transform,
            nodata=qa_nodata,
        )
        assets[qa_key] = {
            "href": href,
            "type": "image/tiff; application=geotiff",
            "roles": ["data"],
        }
    props = {"datetime": datetime, **(properties or {})}
    if cloud_cover is not None:
        props["eo:cloud_cover"] = cloud_cover
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": collection,
        "geometry": footprint(crs, transform, shape),
        "bbox": list(box(*_bounds(crs, transform, shape)).bounds),
        "properties": props,
        "assets": assets,
        "links": [],
    }
    (root / "items").mkdir(parents=True, exist_ok=True)
    (root / "items" / f"{item_id}.json").write_text(json.dumps(item))
    return item


def _bounds(crs, transform, shape):
    from shapely.geometry import shape as to_shape

    return to_shape(footprint(crs, transform, shape)).bounds


def store_bytes(root: Path) -> dict[str, bytes]:
    """Every file under a store folder, by relative path (for byte-for-byte comparisons)."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
