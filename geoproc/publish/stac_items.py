"""STAC metadata of the published outputs: one Collection per product, one Item per
(product, tile, date), and a root Catalog; built with pystac, written as static JSON.

Conventions (STAC 1.1.0, https://github.com/radiantearth/stac-spec; extension versions
limited to those in the offline schema mirror): COG assets carry ``file:checksum`` as a
sha2-256 multihash (``1220`` + hex digest, https://multiformats.io/multihash) and
``file:size``, ``raster:bands`` (nodata, scale, offset, unit) and, on class maps,
``classification:classes`` / ``classification:bitfields`` and, on continuous layers,
``raster:bands`` statistics; each tile's product store is a Zarr asset of the Collection
(media type ``application/vnd+zarr``, ``cube:*`` fields and ``xarray:open_kwargs`` so
``xr.open_dataset(href, **kwargs)`` works), described once rather than on every date's
Item; the Collection's ``renders`` tell a tiler how to draw the layer; provenance goes to ``processing:*`` and ``derived_from`` links. All links and asset
hrefs are relative, so the catalog works from a local folder and from a bucket, and no
timestamp of the publishing itself is recorded, so a rerun yields the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import pystac
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_geom

from geoproc import __version__
from geoproc.errors import StoreError
from geoproc.publish.colormaps import LayerStyle
from geoproc.publish.product_stores import step_interval

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
ZARR_MEDIA_TYPE = "application/vnd+zarr"
EXT = {
    "proj": "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "file": "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "raster": "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "processing": "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "xarray": "https://stac-extensions.github.io/xarray-assets/v1.0.0/schema.json",
    "classification": "https://stac-extensions.github.io/classification/v1.1.0/schema.json",
    "scientific": "https://stac-extensions.github.io/scientific/v1.0.0/schema.json",
    "datacube": "https://stac-extensions.github.io/datacube/v2.3.0/schema.json",
    "render": "https://stac-extensions.github.io/render/v2.0.0/schema.json",
}
_UP = "../../../"
"""From ``stac/{product}/{item}/{item}.json`` back to the output root."""


@dataclass(frozen=True)
class AssetFile:
    """One published file an Item points to."""

    key: str
    relpath: str
    """Path relative to the output root."""
    data: bytes
    media_type: str
    roles: tuple[str, ...]
    title: str
    fields: dict = field(default_factory=dict)
    """Extension fields of the asset (raster:bands, classification:classes...)."""


def multihash_sha256(data: bytes) -> str:
    """``file:checksum`` value: multihash code 0x12 (sha2-256), length 0x20, digest."""
    return "1220" + hashlib.sha256(data).hexdigest()


def item_id(product: str, tile: str, label: str) -> str:
    return f"{product}-{tile}-{label}"


def item_relpath(product: str, ident: str) -> str:
    return f"stac/{product}/{ident}/{ident}.json"


def raster_band(
    dtype: str, attrs: dict, nodata: float | int | None, values: np.ndarray | None = None
) -> dict:
    """``raster:bands`` entry; with ``values``, their statistics (stored values, nodata left out)."""
    band: dict = {"data_type": _raster_dtype(dtype)}
    if nodata is not None:
        band["nodata"] = "nan" if isinstance(nodata, float) and np.isnan(nodata) else nodata
    if attrs.get("units"):
        band["unit"] = str(attrs["units"])
    if "scale_factor" in attrs:
        band["scale"] = float(attrs["scale_factor"])
    if "add_offset" in attrs:
        band["offset"] = float(attrs["add_offset"])
    if values is not None:
        band["statistics"] = band_statistics(values, nodata)
    return band


def band_statistics(values: np.ndarray, nodata: float | int | None) -> dict:
    """Minimum, maximum, mean, stddev and valid_percent of the valid pixels."""
    data = np.asarray(values)
    valid = (
        np.isfinite(data) if np.issubdtype(data.dtype, np.floating) else np.ones(data.shape, bool)
    )
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        valid &= data != nodata
    stats: dict = {"valid_percent": round(100.0 * float(valid.mean()) if data.size else 0.0, 4)}
    if valid.any():
        picked = data[valid].astype("float64")
        stats.update(
            minimum=_round(picked.min()),
            maximum=_round(picked.max()),
            mean=_round(picked.mean()),
            stddev=_round(picked.std()),
        )
    return stats


def _round(value: float) -> float:
    return float(f"{float(value):.6g}")


def classification_classes(style: LayerStyle) -> list[dict]:
    """STAC classes of a class map: the CF name, its label as description, the colour."""
    return [
        {
            "value": c.value,
            "name": c.name,
            "description": c.label,
            "color_hint": "{:02X}{:02X}{:02X}".format(*c.rgba[:3]),
        }
        for c in style.classes
    ]


def classification_bitfields(style: LayerStyle) -> list[dict]:
    """STAC bit fields of a CF flag_masks variable (classification extension v1.1.0)."""
    return [
        {
            "offset": f.offset,
            "length": f.length,
            "classes": [
                {"value": value, "name": name, "description": name.replace("_", " ")}
                for value, name in f.classes
            ],
        }
        for f in style.bitfields
    ]


def classification_fields(style: LayerStyle) -> dict:
    """The classification fields of an asset: classes and/or bit fields, when it has them."""
    fields: dict = {}
    if style.is_classes:
        fields["classification:classes"] = classification_classes(style)
    if style.bitfields:
        fields["classification:bitfields"] = classification_bitfields(style)
    return fields


def footprint(crs: CRS, transform: Affine, shape: tuple[int, int]) -> dict:
    """Lon/lat polygon of the tile edges, densified so the UTM->WGS84 curvature is kept."""
    height, width = shape
    n = 8
    ring = []
    for i in range(n):
        ring.append(transform @ (width * i / n, 0))
    for i in range(n):
        ring.append(transform @ (width, height * i / n))
    for i in range(n):
        ring.append(transform @ (width * (n - i) / n, height))
    for i in range(n):
        ring.append(transform @ (0, height * (n - i) / n))
    ring.append(ring[0])
    geom = transform_geom(crs, "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})
    coords = [[round(x, 7), round(y, 7)] for x, y in geom["coordinates"][0]]
    return {"type": "Polygon", "coordinates": [coords]}


def bbox_of(geometry: dict) -> list[float]:
    xs = [c[0] for c in geometry["coordinates"][0]]
    ys = [c[1] for c in geometry["coordinates"][0]]
    return [min(xs), min(ys), max(xs), max(ys)]


def build_item(
    *,
    product: str,
    tile: str,
    label: str,
    crs: CRS,
    transform: Affine,
    shape: tuple[int, int],
    assets: list[AssetFile],
    sources: list[str],
    source_hrefs: dict[str, str],
    run_id: str,
    store_attrs: dict,
) -> dict:
    """The Item dict for one (product, tile, date); written after all its assets exist."""
    ident = item_id(product, tile, label)
    geometry = footprint(crs, transform, shape)
    start, end = step_interval(label)
    if start is None or end is None:
        raise StoreError(
            f"Product store of {product}/{tile} has no time dimension, and a STAC item needs a "
            "date: give the store a `time` or `year` dimension."
        )
    props: dict = {}
    if start is not None and start != end:
        props.update(start_datetime=_iso(start), end_datetime=_iso(end))
    item = pystac.Item(
        id=ident,
        geometry=geometry,
        bbox=bbox_of(geometry),
        datetime=start.to_pydatetime() if start == end else None,
        properties=props,
        collection=product,
    )
    if sources:
        item.properties["geoproc:source_items"] = list(sources)
    item.properties.update(_provenance(product, run_id, store_attrs))
    item.properties.update(
        {
            "proj:code": _proj_code(crs),
            "proj:shape": [int(shape[0]), int(shape[1])],
            "proj:transform": [float(v) for v in list(transform)[:6]],
            "proj:bbox": _proj_bbox(transform, shape),
            "geoproc:tile": tile,
        }
    )
    if not _proj_code(crs):
        item.properties.pop("proj:code")
        item.properties["proj:wkt2"] = crs.to_wkt()
    extensions = {EXT["proj"], EXT["file"], EXT["processing"]}
    for asset in assets:
        fields = {
            "file:checksum": multihash_sha256(asset.data),
            "file:size": len(asset.data),
            **asset.fields,
        }
        if "raster:bands" in fields:
            extensions.add(EXT["raster"])
        if "classification:classes" in fields or "classification:bitfields" in fields:
            extensions.add(EXT["classification"])
        item.add_asset(
            asset.key,
            pystac.Asset(
                href=_UP + asset.relpath,
                media_type=asset.media_type,
                roles=list(asset.roles),
                title=asset.title,
                extra_fields=fields,
            ),
        )
    item.stac_extensions = sorted(extensions)
    out = item.to_dict(include_self_link=False, transform_hrefs=False)
    out["links"] = [
        {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
        {"rel": "parent", "href": "../collection.json", "type": "application/json"},
        {"rel": "collection", "href": "../collection.json", "type": "application/json"},
        *(
            {"rel": "derived_from", "href": href, "type": "application/geo+json"}
            for href in sorted({source_hrefs[s] for s in sources if s in source_hrefs})
        ),
    ]
    return out


def build_collection(
    product: str,
    items: list[dict],
    *,
    item_assets: dict[str, dict],
    store_attrs: dict,
    class_summaries: list[dict],
    units: list[str],
    run_id: str,
    model_card: AssetFile | None = None,
    store_assets: dict[str, dict] | None = None,
    renders: dict[str, dict] | None = None,
) -> dict:
    """The Collection of one product, linking every item relatively.

    ``model_card`` (relpath relative to the collection folder) becomes an asset with role
    ``metadata``; otherwise the method text is the algorithm reference (``sci:citation``).
    ``store_assets`` are the product's Zarr stores (one per tile, all dates: described
    once here, not on every date's Item); ``renders`` the render extension's default
    rendering of the drawn layer (so a tiler draws it without guessing a stretch).
    """
    bboxes = [i["bbox"] for i in items]
    spatial = [
        min(b[0] for b in bboxes),
        min(b[1] for b in bboxes),
        max(b[2] for b in bboxes),
        max(b[3] for b in bboxes),
    ]
    starts = [
        i["properties"].get("start_datetime") or i["properties"].get("datetime") for i in items
    ]
    ends = [i["properties"].get("end_datetime") or i["properties"].get("datetime") for i in items]
    starts = sorted(s for s in starts if s)
    ends = sorted(e for e in ends if e)
    interval = [starts[0] if starts else None, ends[-1] if ends else None]
    method = str(store_attrs.get("method", "")) or f"geoproc {product} product"
    summaries: dict = {"geoproc:units": sorted(set(units))}
    if class_summaries:
        summaries["classification:classes"] = class_summaries
    collection = pystac.Collection(
        id=product,
        title=f"geoproc {product}",
        description=(
            f"{product} maps made by geoproc {__version__}. Method: {method}. "
            f"Algorithm version {store_attrs.get('algorithm_version', 'unknown')}."
        ),
        extent=pystac.Extent(
            pystac.SpatialExtent([spatial]),
            pystac.TemporalExtent([[None, None]]),
        ),
        license="other",
        summaries=pystac.Summaries(summaries),
    )
    out = collection.to_dict(include_self_link=False, transform_hrefs=False)
    out["extent"]["temporal"]["interval"] = [interval]
    out["item_assets"] = item_assets
    if model_card is not None:
        out["assets"] = {
            model_card.key: {
                "href": f"./{model_card.relpath}",
                "type": model_card.media_type,
                "roles": list(model_card.roles),
                "title": model_card.title,
                "file:checksum": multihash_sha256(model_card.data),
                "file:size": len(model_card.data),
            }
        }
    if store_assets:
        out.setdefault("assets", {}).update(store_assets)
    if renders:
        out["renders"] = renders
    out["sci:citation"] = method
    out.update(_provenance(product, run_id, store_attrs))
    out["stac_extensions"] = sorted(
        {
            EXT["processing"],
            EXT["scientific"],
            EXT["classification"] if class_summaries else "",
            EXT["file"] if model_card is not None else "",
            EXT["xarray"] if store_assets else "",
            EXT["datacube"]
            if any("cube:variables" in a for a in (store_assets or {}).values())
            else "",
            EXT["render"] if renders else "",
        }
        - {""}
    )
    # processing fields on a Collection belong to a provider (processing ext. v1.2.0).
    provider = {
        "name": "geoproc",
        "roles": ["processor"],
        **{k: out.pop(k) for k in list(out) if k.startswith("processing:")},
    }
    out["providers"] = [provider]
    links = [
        {"rel": "root", "href": "../catalog.json", "type": "application/json"},
        {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
    ]
    card = store_attrs.get("model_card") or store_attrs.get("model_card_url")
    if isinstance(card, str) and card:
        links.append({"rel": "describedby", "href": card, "title": "model card"})
    for item in sorted(items, key=lambda i: i["id"]):
        links.append(
            {
                "rel": "item",
                "href": f"./{item['id']}/{item['id']}.json",
                "type": "application/geo+json",
            }
        )
    out["links"] = links
    return out


def build_catalog(products: list[str]) -> dict:
    catalog = pystac.Catalog(
        id="geoproc",
        description=(
            "geoproc outputs: flood extent, land surface temperature and tree canopy maps "
            "(COG per date, Zarr store per tile) and the analysis-ready cubes they were made from."
        ),
        title="geoproc",
    )
    out = catalog.to_dict(include_self_link=False, transform_hrefs=False)
    out["links"] = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}] + [
        {"rel": "child", "href": f"./{p}/collection.json", "type": "application/json"}
        for p in sorted(products)
    ]
    return out


def to_json_bytes(obj: dict) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode()


def _provenance(product: str, run_id: str, store_attrs: dict) -> dict:
    software = {"geoproc": __version__}
    version = store_attrs.get("algorithm_version")
    if version:
        software[f"geoproc-{product}"] = str(version)
    return {
        "processing:software": software,
        "processing:lineage": (
            f"geoproc run {run_id}: {store_attrs.get('method', product)} "
            f"(algorithm version {version or 'unknown'})"
        ),
        "geoproc:run_id": run_id,
    }


def _proj_code(crs: CRS) -> str | None:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else None


def _proj_bbox(transform: Affine, shape: tuple[int, int]) -> list[float]:
    height, width = shape
    x0, y0 = transform @ (0, 0)
    x1, y1 = transform @ (width, height)
    return [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]


def _iso(ts) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _raster_dtype(dtype: str) -> str:
    name = np.dtype(dtype).name
    return name if name != "bool" else "uint8"
