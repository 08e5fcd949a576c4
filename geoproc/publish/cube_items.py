"""The ``cubes`` Collection: one STAC Item per tile's analysis-ready cube (``cubes/{tile}.zarr``).

Why one Item per tile rather than per date: a cube is one Zarr store holding every date,
and it is opened as a whole by xarray; the Item carries the store once, with
``cube:dimensions``/``cube:variables`` (datacube extension) and ``xarray:open_kwargs``,
its footprint and ``proj:*`` grid, and the time range it covers. Built from the store's
metadata only, without the run id, so a rerun over an unchanged cube writes nothing.
"""

from __future__ import annotations

import logging

import pystac
import xarray as xr

from geoproc import __version__, storage
from geoproc.errors import StoreError
from geoproc.publish import stac_items
from geoproc.publish.atomic import ObjectWriter
from geoproc.publish.datacube import DATACUBE_EXT, XARRAY_EXT, cube_fields, time_range, zarr_asset
from geoproc.publish.product_stores import grid_transform, store_crs
from geoproc.stac_schemas import validate_stac

log = logging.getLogger(__name__)

COLLECTION = "cubes"


def find_cubes(writer: ObjectWriter) -> list[str]:
    """Tile ids of every ``cubes/{tile}.zarr`` under the output root."""
    fs, base = storage.filesystem(writer.location("cubes"))
    if not fs.exists(base):
        return []
    names = (e.rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(base, detail=False))
    return sorted(n[: -len(".zarr")] for n in names if n.endswith(".zarr"))


def publish_cubes(writer: ObjectWriter, *, tiles: set[str] | None, validate: bool) -> dict | None:
    """Write the cube Items and the ``cubes`` Collection; None when the output has no cube.

    ``tiles`` limits which cubes are described again (the others keep their Items).
    """
    found = find_cubes(writer)
    if not found:
        return None
    keep: set[str] = set()
    items: list[dict] = []
    for tile in found:
        rel = stac_items.item_relpath(COLLECTION, f"cube-{tile}")
        if tiles is not None and tile not in tiles:
            if writer.exists(rel):
                keep.add(rel)
                items.append(_item_summary(writer, rel))
            continue
        try:
            item = build_cube_item(writer, tile)
        except StoreError as exc:
            log.warning("cube of %s not described in STAC: %s", tile, exc)
            continue
        data = stac_items.to_json_bytes(item)
        if validate and not writer.holds(rel, data):
            validate_stac(item)
        writer.put(rel, data)
        keep.add(rel)
        items.append(item)
    if not items:
        return None
    collection = build_cube_collection(items)
    data = stac_items.to_json_bytes(collection)
    if validate and not writer.holds(f"stac/{COLLECTION}/collection.json", data):
        validate_stac(collection)
    writer.put(f"stac/{COLLECTION}/collection.json", data)
    keep.add(f"stac/{COLLECTION}/collection.json")
    writer.prune(f"stac/{COLLECTION}", keep)
    return {"items": len(items)}


def build_cube_item(writer: ObjectWriter, tile: str) -> dict:
    """The Item of one tile's cube, from its metadata."""
    url = writer.location(f"cubes/{tile}.zarr").url
    try:
        ds = xr.open_zarr(storage.zarr_store(url, read_only=True), consolidated=None)
    except Exception as exc:  # zarr raises many kinds for an unreadable store
        raise StoreError(f"cannot open cube {url} ({type(exc).__name__}: {exc})") from exc
    crs, transform = store_crs(ds, url), grid_transform(ds, url)
    shape = (int(ds.sizes["y"]), int(ds.sizes["x"]))
    geometry = stac_items.footprint(crs, transform, shape)
    start, end = time_range(ds)
    ident = f"cube-{tile}"
    item = pystac.Item(
        id=ident,
        geometry=geometry,
        bbox=stac_items.bbox_of(geometry),
        datetime=None,
        properties={"start_datetime": start, "end_datetime": end},
        collection=COLLECTION,
    )
    out = item.to_dict(include_self_link=False, transform_hrefs=False)
    props = out["properties"]
    epsg = crs.to_epsg()
    if epsg:
        props["proj:code"] = f"EPSG:{epsg}"
    else:
        props["proj:wkt2"] = crs.to_wkt()
    props.update(
        {
            "proj:shape": list(shape),
            "proj:transform": [float(v) for v in list(transform)[:6]],
            "geoproc:tile": tile,
            "geoproc:steps": int(ds.sizes.get("time", 0)),
            **cube_fields(ds, crs=crs, transform=transform),
        }
    )
    out["assets"] = {
        "zarr": zarr_asset(
            f"../../../cubes/{tile}.zarr",
            title=f"analysis-ready cube of tile {tile} (all dates)",
            description=str(ds.attrs.get("title", "")) or None,
        )
    }
    out["stac_extensions"] = sorted({stac_items.EXT["proj"], DATACUBE_EXT, XARRAY_EXT})
    out["links"] = [
        {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
        {"rel": "parent", "href": "../collection.json", "type": "application/json"},
        {"rel": "collection", "href": "../collection.json", "type": "application/json"},
    ]
    return out


def build_cube_collection(items: list[dict]) -> dict:
    bboxes = [i["bbox"] for i in items]
    starts = sorted(
        i["properties"]["start_datetime"] for i in items if i["properties"].get("start_datetime")
    )
    ends = sorted(
        i["properties"]["end_datetime"] for i in items if i["properties"].get("end_datetime")
    )
    collection = pystac.Collection(
        id=COLLECTION,
        title="geoproc analysis-ready cubes",
        description=(
            f"Time-series cubes per processing tile made by geoproc {__version__}: masked, "
            "harmonised surface reflectance (STAC common band names), SAR backscatter and "
            "brightness temperature, one Zarr store per tile. Open an item's `zarr` asset "
            "with xarray using its `xarray:open_kwargs`."
        ),
        extent=pystac.Extent(
            pystac.SpatialExtent(
                [
                    [
                        min(b[0] for b in bboxes),
                        min(b[1] for b in bboxes),
                        max(b[2] for b in bboxes),
                        max(b[3] for b in bboxes),
                    ]
                ]
            ),
            pystac.TemporalExtent([[None, None]]),
        ),
        license="other",
    )
    out = collection.to_dict(include_self_link=False, transform_hrefs=False)
    out["extent"]["temporal"]["interval"] = [
        [starts[0] if starts else None, ends[-1] if ends else None]
    ]
    out["item_assets"] = {
        "zarr": {
            "type": "application/vnd+zarr",
            "roles": ["data"],
            "title": "analysis-ready cube of the tile (all dates)",
        }
    }
    out["links"] = [
        {"rel": "root", "href": "../catalog.json", "type": "application/json"},
        {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
        *(
            {"rel": "item", "href": f"./{i['id']}/{i['id']}.json", "type": "application/geo+json"}
            for i in sorted(items, key=lambda i: i["id"])
        ),
    ]
    return out


def _item_summary(writer: ObjectWriter, rel: str) -> dict:
    import json

    fs, path = storage.filesystem(writer.location(rel))
    return json.loads(fs.cat_file(path))
