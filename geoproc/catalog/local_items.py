"""STAC items for local GeoTIFFs (rio-stac-like, with rasterio + plain dicts).

Why: real files handed to us without a catalog (fixtures, one-off deliveries) should go
through the same search -> cube path as everything else. Each file becomes one item with
one multi-band asset whose ``eo:bands`` names come from the band descriptions (B02, ...,
Fmask, SCL), so the cube builder finds band ``B04`` inside it. Projection follows the STAC
projection extension (``proj:epsg`` when the CRS has a code, ``proj:wkt2`` otherwise);
the footprint is the raster outline reprojected to lon/lat.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import rasterio
from pyproj import CRS, Transformer
from shapely.geometry import box, mapping
from shapely.ops import transform as shp_transform

from geoproc.errors import UsageError


def item_for_geotiff(
    path: str | os.PathLike,
    *,
    collection: str,
    item_id: str | None = None,
    datetime_text: str | None = None,
    properties: dict | None = None,
) -> dict:
    """One STAC item (dict) describing a local GeoTIFF; bands named by their descriptions."""
    path = Path(path)
    with rasterio.open(path) as src:
        if src.crs is None:
            raise UsageError(f"{path} has no CRS: georeference the file before cataloguing it.")
        tags = src.tags()
        names = [d or f"band{i + 1}" for i, d in enumerate(src.descriptions)]
        bands = [
            {"name": n, "nodata": src.nodata, "data_type": src.dtypes[i]}
            for i, n in enumerate(names)
        ]
        crs = CRS.from_user_input(src.crs.to_wkt())
        outline = box(*src.bounds).segmentize(max(src.res) * 16)
        shape, transform = [src.height, src.width], list(src.transform)[:6]
    to_ll = Transformer.from_crs(crs, 4326, always_xy=True)
    geom = shp_transform(to_ll.transform, outline)
    when = datetime_text or tags.get("datetime")
    if not when:
        raise UsageError(f"{path} has no datetime tag: pass datetime_text='YYYY-MM-DDTHH:MM:SSZ'.")
    t = datetime.fromisoformat(when.replace("Z", "+00:00").replace(" ", "T"))
    t = (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)
    epsg = crs.to_epsg()
    proj = {"proj:epsg": epsg} if epsg else {"proj:wkt2": crs.to_wkt()}
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        ],
        "id": item_id or path.stem,
        "collection": collection,
        "geometry": mapping(geom),
        "bbox": list(geom.bounds),
        "properties": {
            "datetime": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            **proj,
            **(properties or {}),
        },
        "assets": {
            "data": {
                "href": str(path.resolve()),
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
                "proj:shape": shape,
                "proj:transform": transform,
                "eo:bands": [{"name": b["name"]} for b in bands],
                "raster:bands": [
                    {"nodata": b["nodata"], "data_type": b["data_type"]} for b in bands
                ],
            }
        },
        "links": [],
    }


def write_items(
    folder: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    collection: str,
    properties: dict | None = None,
) -> list[dict]:
    """Items for every ``*.tif`` in a folder, written as ``{out_dir}/{id}.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = []
    for tif in sorted(Path(folder).glob("*.tif")):
        item = item_for_geotiff(tif, collection=collection, properties=properties)
        (out / f"{item['id']}.json").write_text(json.dumps(item))
        items.append(item)
    if not items:
        raise UsageError(
            f"{folder} holds no .tif files: pass the folder that contains the GeoTIFFs."
        )
    return items
