"""Publish a run: product stores -> COGs, web tiles, STAC catalog and the offline viewer.

Output layout under the run's output URL (local path, file:// or s3://):

    cog/{product}/{tile}/{date}/{variable}.tif    one COG per variable
    cog/{product}/{tile}/{date}/thumbnail.png     quicklook of the item
    tiles/{product}/{date}/{z}/{x}/{y}.png        WebMercatorQuad XYZ pyramid
    tiles/{product}/layer.json                    the layer's dates, tiles, legend
    stac/catalog.json, stac/{product}/collection.json, stac/{product}/{id}/{id}.json
    stac/cubes/collection.json, stac/cubes/cube-{tile}/cube-{tile}.json   the Zarr cubes
    tiles/{product}/{date}/{zmax}/{x}/{y}.js      the stored values under each web pixel
    viewer/index.html, viewer/run-{run_id}.html   offline map of every published layer
    viewer/vendor/leaflet/                        the map library the pages load
    publish-state/{product}.json                  what each date was made from (reruns)

Why incremental: a date whose inputs (values, attributes, grid, style, sources, software)
are unchanged since the last publish is not encoded again (`publish_state`), so a no-op
rerun reads the state and lists the outputs instead of re-encoding every COG.
Why this order: every object is written only if its bytes changed (`atomic.ObjectWriter`),
and an Item is written only after all its assets, a Collection after its Items, the
Catalog last; an interrupted publish therefore never leaves an Item whose assets are
missing, and the rerun completes it. Objects a previous run made that this run no longer
produces are pruned, Items before their assets.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from rasterio.warp import transform_bounds
from rio_tiler.utils import render

from geoproc import storage
from geoproc.errors import UsageError
from geoproc.publish import stac_items, web_tiles
from geoproc.publish.atomic import ObjectWriter
from geoproc.publish.cog import cog_bytes, nodata_of
from geoproc.publish.colormaps import LayerStyle, primary_variable, style_for
from geoproc.publish.cube_items import publish_cubes
from geoproc.publish.datacube import cube_fields, zarr_asset
from geoproc.publish.product_stores import ProductStore, find_product_stores
from geoproc.publish.publish_state import (
    ProductState,
    StepRecord,
    files_present,
    listing,
    read_state,
    state_relpath,
    step_fingerprint,
    store_key,
)
from geoproc.publish.source_links import resolve_source_hrefs
from geoproc.publish.stac_api_push import push_to_stac_api
from geoproc.publish.viewer import viewer_files, viewer_html
from geoproc.stac_schemas import validate_stac

log = logging.getLogger(__name__)

THUMBNAIL_PX = 256
_RENDERER_VERSION = 2
"""Bump when the tile rendering changes, so published pyramids are re-rendered."""
_LAYER_ORDER = {"flood": 0, "lst": 1, "canopy": 2}
"""Viewer layer order: the first one is shown when the page opens."""


def publish_run(
    out_url: str,
    *,
    products: list[str] | None = None,
    run_id: str,
    aoi: object | None = None,
    source_catalog: str | None = None,
    stac_api: str | None = None,
    asset_base_url: str | None = None,
    validate: bool = True,
) -> dict:
    """Publish every product store under ``{out_url}/products/``; return a summary dict.

    ``aoi`` (anything `geoproc.grid.parse_aoi` takes) limits the web tiles to its bounds, or,
    given as tile ids, limits publishing to those tiles. ``source_catalog`` is the STAC API
    the run searched: source item ids are resolved there into ``derived_from`` links.
    ``stac_api`` is a STAC API with the Transactions extension to push collections and
    items to (asset hrefs made absolute against ``asset_base_url``, default the output URL).
    ``validate`` checks the catalog, each collection and the first item of each product
    against the offline schemas before writing them (jsonschema costs ~0.3 s per object).
    """
    if not run_id or "/" in run_id or run_id.strip() != run_id:
        raise UsageError(
            f"run id {run_id!r} is not usable in a file name: pass a non-empty --run-id "
            "without slashes or surrounding spaces."
        )
    started = time.monotonic()
    root = storage.parse_url(out_url)
    stores = find_product_stores(root.url, products=products)
    aoi_bounds, tile_filter = _parse_aoi(aoi)
    all_stores = stores
    if tile_filter is not None:
        stores = [s for s in stores if s.tile in tile_filter]
        if not stores:
            raise UsageError(
                f"None of the tiles {', '.join(sorted(tile_filter))} has a product store under "
                f"{root.url}/products: pass tile ids that were processed."
            )
    writer = ObjectWriter(root)
    source_hrefs = resolve_source_hrefs(
        (i for s in stores for label, v in s.steps() for i in s.source_items(label, v)),
        catalog_url=source_catalog,
    )
    # Tiles outside --aoi keep what they had: their stores come along so the Collection,
    # the pyramids and the state still cover them, but nothing of theirs is re-encoded.
    selected_products = {s.product for s in stores}
    by_product: dict[str, list[ProductStore]] = defaultdict(list)
    for store in all_stores:
        if store.product in selected_products:
            by_product[store.product].append(store)

    summary: dict = {"run_id": run_id, "out": root.url, "products": {}}
    collections: list[dict] = []
    all_items: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="geoproc-publish-") as staging:
        for product, product_stores in sorted(by_product.items()):
            summary["products"][product], collection, items = _publish_product(
                product,
                product_stores,
                writer=writer,
                staging=Path(staging),
                run_id=run_id,
                source_hrefs=source_hrefs,
                source_catalog=source_catalog,
                aoi_bounds=aoi_bounds,
                validate=validate,
                full_items=bool(stac_api),
                only_tiles=tile_filter,
            )
            collections.append(collection)
            all_items.extend(items)
    summary["cubes"] = publish_cubes(writer, tiles=tile_filter, validate=validate)
    catalog = stac_items.build_catalog(_published_products(writer))
    catalog_bytes = stac_items.to_json_bytes(catalog)
    if validate and not writer.holds("stac/catalog.json", catalog_bytes):
        validate_stac(catalog)
    writer.put("stac/catalog.json", catalog_bytes)
    for relpath, data in viewer_files().items():
        writer.put(f"viewer/{relpath}", data)  # the vendored map library, before the page
    page = viewer_html(_viewer_manifest(writer, run_id))
    writer.put("viewer/index.html", page)
    writer.put(f"viewer/run-{run_id}.html", page)
    if stac_api:
        summary["stac_api"] = push_to_stac_api(
            stac_api,
            collections,
            all_items,
            asset_base_url=asset_base_url or root.url,
            item_base_paths={i["id"]: f"stac/{i['collection']}/{i['id']}" for i in all_items},
            collection_base_paths={c["id"]: f"stac/{c['id']}" for c in collections},
        )
    summary.update(
        catalog=root.join("stac/catalog.json").url,
        viewer=root.join("viewer/index.html").url,
        objects=writer.summary(),
        seconds=round(time.monotonic() - started, 2),
    )
    log.info("published %s: %s", root.url, writer.summary())
    return summary


def _publish_product(
    product: str,
    stores: list[ProductStore],
    *,
    writer: ObjectWriter,
    staging: Path,
    run_id: str,
    source_hrefs: dict[str, str],
    source_catalog: str | None,
    aoi_bounds: tuple[float, float, float, float] | None,
    validate: bool,
    full_items: bool,
    only_tiles: set[str] | None = None,
) -> tuple[dict, dict, list[dict]]:
    """One product: each date's COGs, thumbnail and Item (only where inputs changed), the
    Collection, the web-tile pyramids and the publish state. Returns (summary, collection,
    items); ``items`` are full Item dicts when ``full_items`` (for a STAC API push), else
    only those written by this call."""
    previous = read_state(writer, product)
    sizes = {**listing(writer, f"cog/{product}"), **listing(writer, f"stac/{product}")}
    state = ProductState()
    summaries: list[dict] = []
    items: list[dict] = []
    keep: set[str] = set()
    sources_by_date: dict[str, list[_PyramidSource]] = defaultdict(list)
    item_assets: dict[str, dict] = {}
    class_summaries: list[dict] = []
    units: list[str] = []
    data_bounds: list[tuple[float, float, float, float]] = []
    resolutions: list[float] = []
    primary = None
    primary_style: LayerStyle | None = None
    style_for_render: LayerStyle | None = None
    primary_attrs: dict = {}
    store_assets: dict[str, dict] = {}
    reused = encoded = 0
    for store in sorted(stores, key=lambda s: s.tile):
        variables = store.variables()
        primary = primary_variable(product, variables)
        crs, transform, shape = store.crs, store.transform, store.shape
        data_bounds.append(
            transform_bounds(crs, "EPSG:4326", *_grid_bounds(transform, shape), densify_pts=21)
        )
        resolutions.append(abs(transform.a))
        store_attrs = dict(store.dataset.attrs)
        var_attrs = {name: dict(store.dataset[name].attrs) for name in variables}
        styles = {name: style_for(name, var_attrs[name], product=product) for name in variables}
        primary_style = styles[primary]
        style_for_render, primary_attrs = styles[primary], var_attrs[primary]
        store_assets[f"zarr-{store.tile}"] = {
            **zarr_asset(
                f"../../products/{product}/{store.tile}.zarr",
                title=f"{product} product store of tile {store.tile} (all dates)",
            ),
            **cube_fields(store.dataset, crs=crs, transform=transform),
        }
        for name in variables:
            attrs, style = var_attrs[name], styles[name]
            entry = {"type": stac_items.COG_MEDIA_TYPE, "roles": ["data"]}
            entry["title"] = str(attrs.get("long_name", name))
            entry.update(stac_items.classification_fields(style))
            if style.is_classes and name == primary:
                class_summaries = entry["classification:classes"]
            if attrs.get("units"):
                units.append(str(attrs["units"]))
            item_assets[name] = entry
        context = {
            "product": product,
            "tile": store.tile,
            "crs": crs.to_wkt(),
            "transform": list(transform)[:6],
            "shape": list(shape),
            "tags": _dataset_tags(store_attrs),
            "provenance": {k: store_attrs.get(k) for k in ("method", "algorithm_version")},
            "styles": {name: style.legend() for name, style in styles.items()},
            "primary": primary,
            "catalog": source_catalog,
        }
        steps = store.steps()
        key = store_key(store.dataset, steps, context)
        if key is not None:
            state.stores[store.tile] = key
        whole_store_unchanged = key is not None and previous.stores.get(store.tile) == key
        outside = only_tiles is not None and store.tile not in only_tiles
        if outside:
            state.stores.pop(store.tile, None)
            if store.tile in previous.stores:
                state.stores[store.tile] = previous.stores[store.tile]
        for label, value in steps:
            record_key = f"{store.tile}/{label}"
            old = previous.steps.get(record_key)
            if outside and (old is None or not files_present(old, sizes)):
                continue  # not published before, and not asked for now
            if outside or (whole_store_unchanged and old is not None and files_present(old, sizes)):
                record = old
            else:
                sources = store.source_items(label, value)
                slices = [
                    (name, var_attrs[name], np.asarray(store.slice(name, value).values))
                    for name in variables
                ]
                inputs = step_fingerprint(
                    context={
                        **context,
                        "label": label,
                        "sources": sources,
                        "derived_from": {s: source_hrefs.get(s) for s in sources},
                    },
                    variables=slices,
                )
                if old is not None and old.inputs == inputs and files_present(old, sizes):
                    record = old
                else:
                    record, item, primary_bytes = _publish_step(
                        product,
                        store,
                        label,
                        slices,
                        styles=styles,
                        primary=primary,
                        inputs=inputs,
                        sources=sources,
                        source_hrefs=source_hrefs,
                        run_id=run_id,
                        writer=writer,
                        validate=validate and encoded == 0,
                    )
                    encoded += 1
                    items.append(item)
                    sources_by_date[label].append(
                        _PyramidSource(
                            store.tile,
                            record.files[record.primary][0],
                            record.primary,
                            primary_bytes,
                        )
                    )
                    state.steps[record_key] = record
                    summaries.append(record.item)
                    keep.update(record.files)
                    continue
            reused += 1
            writer.unchanged += len(record.files)
            state.steps[record_key] = record
            summaries.append(record.item)
            keep.update(record.files)
            sources_by_date[label].append(
                _PyramidSource(store.tile, record.files[record.primary][0], record.primary, None)
            )
            if full_items:
                item_rel = stac_items.item_relpath(product, record.item["id"])
                items.append(json.loads(_read_bytes(writer, item_rel)))
    changed = encoded > 0 or set(state.steps) != set(previous.steps)
    state.run_id = run_id if changed or previous.run_id is None else previous.run_id
    item_assets["thumbnail"] = {"type": "image/png", "roles": ["thumbnail"], "title": "quicklook"}
    store_attrs = dict(stores[0].dataset.attrs)
    card = _model_card(store_attrs)
    card_asset = None
    if card is not None:
        card_rel = f"stac/{product}/model-card.json"
        writer.put(card_rel, card)
        keep.add(card_rel)
        card_asset = stac_items.AssetFile(
            key="model-card",
            relpath="model-card.json",
            data=card,
            media_type="application/json",
            roles=("metadata",),
            title=f"model card of {store_attrs['model_name']} {store_attrs['model_version']}",
        )
    collection = stac_items.build_collection(
        product,
        summaries,
        item_assets=item_assets,
        store_attrs=store_attrs,
        class_summaries=class_summaries,
        units=units,
        run_id=state.run_id,
        model_card=card_asset,
        store_assets=store_assets,
        renders={product: style_for_render.render(primary, primary_attrs)} if primary else None,
    )
    collection_bytes = stac_items.to_json_bytes(collection)
    if validate and not writer.holds(f"stac/{product}/collection.json", collection_bytes):
        validate_stac(collection)  # validated whenever it changes (~0.3 s each)
    writer.put(f"stac/{product}/collection.json", collection_bytes)
    keep.add(f"stac/{product}/collection.json")
    # Orphans of earlier runs: items first, then their assets.
    writer.prune(f"stac/{product}", keep)
    writer.prune(f"cog/{product}", keep)

    bounds = _union(data_bounds)
    if aoi_bounds is not None:
        bounds = _intersection(bounds, aoi_bounds) or bounds
    zooms = web_tiles.zoom_range(bounds, resolution_m=min(resolutions))
    style = primary_style or style_for(primary or "", {}, product=product)
    layer_tiles = _publish_pyramids(
        product,
        sources_by_date,
        writer=writer,
        staging=staging,
        style=style,
        zooms=zooms,
        bounds=bounds,
        primary=primary,
    )
    # Last: a publish interrupted before this line is redone (and byte-compared) by the rerun.
    writer.put(state_relpath(product), state.to_bytes())
    product_summary = {
        "items": len(summaries),
        "items_written": encoded,
        "items_reused": reused,
        "cogs": sum(1 for k in keep if k.endswith(".tif")),
        "web_tiles": sum(len(v) for v in layer_tiles.values()),
        "dates": sorted(layer_tiles),
        "zooms": [zooms.minzoom, zooms.maxzoom],
    }
    return product_summary, collection, items


@dataclass(frozen=True)
class _PyramidSource:
    """One processing tile's COG of the drawn variable at one date."""

    tile: str
    sha256: str
    relpath: str
    data: bytes | None
    """The bytes when this publish encoded them; None when reused (read back if needed)."""


def _publish_step(
    product: str,
    store: ProductStore,
    label: str,
    slices: list[tuple[str, dict, np.ndarray]],
    *,
    styles: dict[str, LayerStyle],
    primary: str,
    inputs: str,
    sources: list[str],
    source_hrefs: dict[str, str],
    run_id: str,
    writer: ObjectWriter,
    validate: bool,
) -> tuple[StepRecord, dict, bytes]:
    """Encode and write one date of one tile: COGs, thumbnail, then the Item naming them."""
    crs, transform, shape = store.crs, store.transform, store.shape
    store_attrs = dict(store.dataset.attrs)
    folder = f"cog/{product}/{store.tile}/{label}"
    assets: list[stac_items.AssetFile] = []
    primary_bytes = b""
    for name, attrs, values in slices:
        style = styles[name]
        data = cog_bytes(
            values,
            crs=crs,
            transform=transform,
            name=name,
            attrs=attrs,
            style=style,
            dataset_tags=_dataset_tags(store_attrs),
        )
        relpath = f"{folder}/{name}.tif"
        writer.put(relpath, data)
        nodata = nodata_of(values.dtype, attrs)
        stats = None if style.is_categorical else values
        fields = {"raster:bands": [stac_items.raster_band(values.dtype.name, attrs, nodata, stats)]}
        fields.update(stac_items.classification_fields(style))
        assets.append(
            stac_items.AssetFile(
                key=name,
                relpath=relpath,
                data=data,
                media_type=stac_items.COG_MEDIA_TYPE,
                roles=("data",),
                title=str(attrs.get("long_name", name)),
                fields=fields,
            )
        )
        if name == primary:
            primary_bytes = data
            thumb = _thumbnail(values, attrs, style)
            thumb_rel = f"{folder}/thumbnail.png"
            writer.put(thumb_rel, thumb)
            assets.append(
                stac_items.AssetFile(
                    key="thumbnail",
                    relpath=thumb_rel,
                    data=thumb,
                    media_type="image/png",
                    roles=("thumbnail",),
                    title=f"{style.title} quicklook",
                )
            )
    item = stac_items.build_item(
        product=product,
        tile=store.tile,
        label=label,
        crs=crs,
        transform=transform,
        shape=shape,
        assets=assets,
        sources=sources,
        source_hrefs=source_hrefs,
        run_id=run_id,
        store_attrs=store_attrs,
    )
    if validate:
        validate_stac(item)  # one per product: all items come from the same code
    rel = stac_items.item_relpath(product, item["id"])
    item_bytes = stac_items.to_json_bytes(item)
    # Written last: every asset above already exists with its final bytes.
    writer.put(rel, item_bytes)
    files = {a.relpath: [hashlib.sha256(a.data).hexdigest(), len(a.data)] for a in assets}
    files[rel] = [hashlib.sha256(item_bytes).hexdigest(), len(item_bytes)]
    summary = {
        "id": item["id"],
        "bbox": item["bbox"],
        "properties": {
            k: item["properties"][k]
            for k in ("datetime", "start_datetime", "end_datetime")
            if k in item["properties"]
        },
    }
    record = StepRecord(inputs=inputs, item=summary, files=files, primary=f"{folder}/{primary}.tif")
    return record, item, primary_bytes


def _publish_pyramids(
    product: str,
    sources_by_date: dict[str, list[_PyramidSource]],
    *,
    writer: ObjectWriter,
    staging: Path,
    style: LayerStyle,
    zooms: web_tiles.ZoomRange,
    bounds: tuple[float, float, float, float],
    primary: str | None,
) -> dict[str, list[str]]:
    """Each date's web-tile pyramid, rendered only when its sources or style changed."""
    layer_tiles: dict[str, list[str]] = {}
    class_counts: dict[str, dict[str, int]] = {}
    fingerprints: dict[str, str] = {}
    keep: set[str] = set()
    layer_rel = f"tiles/{product}/layer.json"
    previous = _read_json(writer, layer_rel)
    present = set(listing(writer, f"tiles/{product}"))
    for label in sorted(sources_by_date):
        sources = sources_by_date[label]
        fingerprint = _pyramid_fingerprint(sources, style, zooms, bounds)
        fingerprints[label] = fingerprint
        reusable = _reusable_tiles(previous, present, product, label, fingerprint, zooms)
        if reusable is not None:
            # Same source bytes, style, zooms and bounds as the published pyramid: the
            # tiles would come out byte-identical, so skip rendering them again.
            layer_tiles[label] = reusable
            class_counts[label] = previous.get("class_counts", {}).get(label, {})
            files = _tile_files(product, label, reusable, zooms)
            writer.unchanged += len(files)
            keep.update(files)
            continue
        paths = [_stage(writer, staging / product / label, source) for source in sources]
        written = []
        counts: dict[str, int] = defaultdict(int)
        tiles = web_tiles.iter_tiles(
            paths, bounds, style=style, zooms=zooms, values_key=f"{product}/{label}"
        )
        for out in tiles:
            tile = out.tile
            rel = f"tiles/{product}/{label}/{tile.z}/{tile.x}/{tile.y}"
            writer.put(f"{rel}.png", out.png)
            keep.add(f"{rel}.png")
            if out.values is not None:
                writer.put(f"{rel}.js", out.values)  # the viewer's click values
                keep.add(f"{rel}.js")
            for value, n in (out.counts or {}).items():
                counts[str(value)] += n
            written.append(f"{tile.z}/{tile.x}/{tile.y}")
        layer_tiles[label] = written
        class_counts[label] = dict(sorted(counts.items()))
    layer = {
        "fingerprints": fingerprints,
        "id": product,
        "title": f"{product}: {style.title}",
        "variable": primary,
        "dates": sorted(layer_tiles),
        "tiles": layer_tiles,
        "class_counts": class_counts,
        "legend": style.legend(),
        "url": f"../tiles/{product}/{{date}}/{{z}}/{{x}}/{{y}}.png",
        "values_url": f"../tiles/{product}/{{date}}/{{z}}/{{x}}/{{y}}.js",
        "bounds": [round(v, 6) for v in bounds],
        "minzoom": zooms.minzoom,
        "maxzoom": zooms.maxzoom,
    }
    writer.put(layer_rel, (json.dumps(layer, sort_keys=True, indent=1) + "\n").encode())
    keep.add(layer_rel)
    writer.prune(f"tiles/{product}", keep)
    return layer_tiles


def _stage(writer: ObjectWriter, folder: Path, source: _PyramidSource) -> str:
    """A local file of the source COG for rio-tiler (this publish's bytes or the published ones)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{source.tile}.tif"
    path.write_bytes(
        source.data if source.data is not None else _read_bytes(writer, source.relpath)
    )
    return str(path)


def _read_bytes(writer: ObjectWriter, relpath: str) -> bytes:
    fs, path = storage.filesystem(writer.location(relpath))
    return fs.cat_file(path)


def _pyramid_fingerprint(sources: list[_PyramidSource], style: LayerStyle, zooms, bounds) -> str:
    """Hash of everything a date's tile pyramid depends on (source bytes, style, grid)."""
    digest = hashlib.sha256()
    for source in sorted(sources, key=lambda s: s.tile):
        digest.update(f"{source.tile}.tif".encode())
        digest.update(bytes.fromhex(source.sha256))
    meta = {
        "legend": style.legend(),
        "zooms": [zooms.minzoom, zooms.maxzoom],
        "bounds": [round(v, 9) for v in bounds],
        "renderer": _RENDERER_VERSION,
    }
    digest.update(json.dumps(meta, sort_keys=True).encode())
    return digest.hexdigest()


def _reusable_tiles(
    previous: dict | None,
    present: set[str],
    product: str,
    label: str,
    fingerprint: str,
    zooms: web_tiles.ZoomRange,
) -> list[str] | None:
    """The tiles of a date already published from identical inputs, if all still exist."""
    if not previous or previous.get("fingerprints", {}).get(label) != fingerprint:
        return None
    listed = previous.get("tiles", {}).get(label)
    if listed is None:
        return None
    files = _tile_files(product, label, listed, zooms)
    return listed if all(f in present for f in files) else None


def _tile_files(product: str, label: str, keys: list[str], zooms: web_tiles.ZoomRange) -> list[str]:
    """The PNGs of a date's tiles and the value payloads of its maximum-zoom ones."""
    prefix = f"tiles/{product}/{label}/"
    files = [f"{prefix}{key}.png" for key in keys]
    top = f"{zooms.maxzoom}/"
    files += [f"{prefix}{key}.js" for key in keys if key.startswith(top)]
    return files


def _read_json(writer: ObjectWriter, relpath: str) -> dict | None:
    fs, path = storage.filesystem(writer.location(relpath))
    try:
        return json.loads(fs.cat_file(path))
    except (FileNotFoundError, ValueError):
        return None


def _viewer_manifest(writer: ObjectWriter, run_id: str) -> dict:
    """Every layer published so far (this run's and earlier runs' products)."""
    fs, base = storage.filesystem(writer.location("tiles"))
    layers = []
    if fs.exists(base):
        for path in sorted(fs.glob(f"{base}/*/layer.json")):
            layers.append(json.loads(fs.cat_file(path)))
    layers.sort(key=lambda la: (_LAYER_ORDER.get(la["id"], len(_LAYER_ORDER)), la["id"]))
    bounds = _union([tuple(layer["bounds"]) for layer in layers]) if layers else (0, 0, 0, 0)
    return {
        "run_id": run_id,
        "bounds": list(bounds),
        "minzoom": min((la["minzoom"] for la in layers), default=0),
        "maxzoom": max((la["maxzoom"] for la in layers), default=0),
        "layers": layers,
    }


def _published_products(writer: ObjectWriter) -> list[str]:
    fs, base = storage.filesystem(writer.location("stac"))
    if not fs.exists(base):
        return []
    return sorted(p.rstrip("/").split("/")[-2] for p in fs.glob(f"{base}/*/collection.json"))


def _model_card(store_attrs: dict) -> bytes | None:
    """The packaged model card (a STAC MLM item) of the model that made the store, if known.

    Matched by name and version, and only returned when its weights checksum equals the
    ``model_sha256`` the engine recorded, so a card is never attached to other weights.
    """
    name, version = store_attrs.get("model_name"), store_attrs.get("model_version")
    if not name or not version:
        return None
    # Located from the `geoproc` package: importing geoproc.inference would load torch.
    path = resources.files("geoproc") / "inference" / "cards" / f"{name}-{version}.json"
    if not path.is_file():
        return None
    data = path.read_bytes()
    sha = store_attrs.get("model_sha256")
    checksums = {a.get("file:checksum") for a in json.loads(data).get("assets", {}).values()}
    if sha and f"1220{sha}" not in checksums:
        log.warning(
            "model card %s-%s does not match the store's weights; not attached", name, version
        )
        return None
    return data


def _thumbnail(values: np.ndarray, attrs: dict, style: LayerStyle) -> bytes:
    step = max(1, math.ceil(max(values.shape) / THUMBNAIL_PX))
    small = values[::step, ::step]
    nodata = nodata_of(small.dtype, attrs)
    if nodata is None:
        valid = np.ones(small.shape, dtype=bool)
    elif isinstance(nodata, float) and math.isnan(nodata):
        valid = ~np.isnan(small)
    else:
        valid = small != nodata
    if style.is_classes:
        colormap = style.class_colormap()
        valid &= np.isin(small, list(colormap))
        data = np.where(valid, small, 0).astype("uint8")
    else:
        physical = small.astype("float64") * float(attrs.get("scale_factor", 1.0)) + float(
            attrs.get("add_offset", 0.0)
        )
        data = style.to_ramp_index(physical)
        colormap = style.ramp_lut()
    mask = np.where(valid, 255, 0).astype("uint8")
    return render(data[np.newaxis], mask, img_format="PNG", colormap=colormap, ZLEVEL=6)


def _dataset_tags(store_attrs: dict) -> dict[str, str]:
    keys = ("product", "algorithm_version", "method")
    return {k: str(store_attrs[k]) for k in keys if k in store_attrs}


def _grid_bounds(transform, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    height, width = shape
    x0, y0 = transform @ (0, 0)
    x1, y1 = transform @ (width, height)
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def _union(boxes: list[tuple[float, ...]]) -> tuple[float, float, float, float]:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _intersection(a, b) -> tuple[float, float, float, float] | None:
    west, south = max(a[0], b[0]), max(a[1], b[1])
    east, north = min(a[2], b[2]), min(a[3], b[3])
    return (west, south, east, north) if west < east and south < north else None


def _parse_aoi(aoi: object | None):
    if aoi is None:
        return None, None
    from geoproc.grid import parse_aoi

    parsed = parse_aoi(aoi)
    if isinstance(parsed, list):
        return None, set(parsed)
    return tuple(parsed.bounds), None
