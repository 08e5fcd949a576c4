"""STAC items parsed once at the edge into frozen objects (as odc-stac's ``ParsedItem``).

Why: the cube builder, the href policy and the run record all need the same few facts
of an item (id, collection, time, `updated`, the catalog it came from, which asset holds
which band). Parsing them once, with the catalog as a field instead of a private key
stamped into the JSON, means a malformed item is refused in one place with one reason.

``ParsedItem`` is also a read-only ``Mapping`` over the original JSON, so code that reads
``item["id"]`` or ``item.get("properties")`` keeps working unchanged.

Band lookup (`locate_band`), in this order, per collection profile:

1. asset key: the profile's key (``B04``), other providers' keys (``ST_TRAD``), then the
   band's common name (``red``, the Earth Search v1 / USGS / Planetary Computer Landsat
   shape), case-insensitively and ignoring a ``.TIF`` suffix;
2. ``eo:bands[].name`` / ``bands[].name`` equal to the provider name (``B04``) - multi-band
   local GeoTIFFs name bands by their descriptions;
3. ``eo:bands[].common_name`` (or ``eo:common_name``) equal to the common name, in a
   single-band data asset (so ``visual`` RGB composites never stand in for ``red``).

Same id, different content (issue #18.5): `resolve_same_id` keeps the item with the newest
``updated`` (then the newest ``datetime``); when those are equal too it refuses, naming
both sources - never file or page order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from geoproc.errors import CatalogError

_NON_DATA_ROLES = {"thumbnail", "overview", "visual", "metadata", "index"}


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # e.g. year 9999 at -23:59 leaves the datetime range
        return None


@dataclass(frozen=True)
class AssetRef:
    """Where one band of one item lives."""

    key: str
    """Asset key in the item."""
    href: str
    """Asset href as the catalog gave it (relative hrefs of local catalogs made absolute)."""
    band_index: int
    """1-based band index inside the asset's file."""
    raster_band: Mapping[str, Any] = field(default_factory=dict)
    """The asset's ``raster:bands`` entry for that band (scale, offset, nodata), if any."""


@dataclass(frozen=True, eq=False)
class ParsedItem(Mapping):
    """One STAC item, checked and parsed once; also a read-only view of its JSON."""

    id: str
    """Item id."""
    collection: str
    """Collection id as the catalog gave it (a profile alias maps it to our profile)."""
    datetime: datetime
    """Acquisition time (``datetime`` or ``start_datetime``), UTC."""
    catalog: str
    """The catalog the item came from (URL or path): the href policy and signing read it."""
    source: str = ""
    """Where this copy of the item was read (file path or page URL), for error messages."""
    updated: datetime | None = None
    """``properties.updated`` (STAC timestamps extension): the reprocessing rule reads it."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """The item JSON (read-only)."""

    # Mapping over the raw JSON, for code that still reads items as dicts.
    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def to_dict(self) -> dict[str, Any]:
        """A deep, mutable copy of the item JSON (for pystac, stackstac, odc-stac)."""
        import copy

        return copy.deepcopy(dict(self.raw))

    def __reduce__(self):
        # picklable for Dask worker processes (a mappingproxy is not)
        return (parse_item, (self.to_dict(),), {"catalog": self.catalog, "source": self.source})

    def __setstate__(self, state: dict) -> None:
        object.__setattr__(self, "catalog", state["catalog"])
        object.__setattr__(self, "source", state["source"])

    def __deepcopy__(self, memo) -> dict[str, Any]:
        # A deep copy is the mutable JSON: libraries that copy then edit an item dict
        # (pystac.Item.from_dict, stackstac, odc-stac) accept a ParsedItem unchanged.
        return self.to_dict()

    @property
    def properties(self) -> Mapping[str, Any]:
        return self.raw.get("properties") or {}

    @property
    def assets(self) -> Mapping[str, Any]:
        return self.raw.get("assets") or {}

    @property
    def geometry(self) -> Mapping[str, Any] | None:
        return self.raw.get("geometry")

    @property
    def version(self) -> tuple:
        """What makes one copy of an item newer than another: (`updated`, processing version)."""
        props = self.properties
        processed = str(
            props.get("processing:version") or props.get("landsat:processing_version") or ""
        )
        return (self.updated or datetime.min.replace(tzinfo=UTC), processed)

    @property
    def fingerprint(self) -> str:
        """Digest of the content that decides pixels: geometry, time, asset hrefs, `updated`."""
        content = {
            "geometry": self.geometry,
            "datetime": self.datetime.isoformat(),
            "updated": self.updated.isoformat() if self.updated else None,
            "hrefs": sorted(
                (k, a.get("href")) for k, a in self.assets.items() if isinstance(a, Mapping)
            ),
        }
        text = json.dumps(content, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_item(
    doc: Mapping[str, Any] | ParsedItem, *, catalog: str = "", source: str = ""
) -> ParsedItem:
    """Check and parse one item; `CatalogError` naming the item when it cannot be used."""
    if isinstance(doc, ParsedItem):
        return doc
    if not isinstance(doc, Mapping):
        raise CatalogError(f"A catalog entry from {source or catalog} is not a JSON object.")
    item_id = doc.get("id")
    if not isinstance(item_id, str) or not item_id:
        raise CatalogError(
            f"An item from {source or catalog} has no string id: fix the catalog entry."
        )
    props = doc.get("properties")
    props = props if isinstance(props, Mapping) else {}
    when = _parse_time(props.get("datetime")) or _parse_time(props.get("start_datetime"))
    if when is None:
        raise CatalogError(
            f"Item {item_id!r} from {source or catalog} has no valid datetime: fix the catalog entry."
        )
    assets = doc.get("assets")
    if assets is not None and not isinstance(assets, Mapping):
        raise CatalogError(
            f"Item {item_id!r} from {source or catalog} has assets that are not an object."
        )
    return ParsedItem(
        id=item_id,
        collection=str(doc.get("collection") or ""),
        datetime=when.replace(microsecond=0),
        catalog=catalog,
        source=source,
        updated=_parse_time(props.get("updated")),
        raw=MappingProxyType(dict(doc)),
    )


def _key(key: str) -> str:
    """Asset keys compare case-insensitively and without a file suffix (USGS's 2020 items
    name assets `ST_TRAD.TIF`, `QA_PIXEL.TIF`)."""
    lower = key.lower()
    for suffix in (".tif", ".tiff"):
        lower = lower.removesuffix(suffix)
    return lower


def _roles(asset: Mapping) -> set:
    roles = asset.get("roles")
    return {r for r in roles if isinstance(r, str)} if isinstance(roles, list) else set()


def _band_list(asset: Mapping) -> list:
    bands = asset.get("eo:bands") or asset.get("bands") or []
    return [b if isinstance(b, Mapping) else {} for b in bands] if isinstance(bands, list) else []


def _raster_band(asset: Mapping, index: int) -> Mapping:
    rb = asset.get("raster:bands")
    if isinstance(rb, list) and len(rb) >= index and isinstance(rb[index - 1], Mapping):
        return rb[index - 1]
    # STAC 1.1 puts scale/offset/nodata on the band objects of `bands` itself
    bands = asset.get("bands")
    if isinstance(bands, list) and len(bands) >= index and isinstance(bands[index - 1], Mapping):
        return {k: v for k, v in bands[index - 1].items() if k in ("scale", "offset", "nodata")}
    return {}


def _ref(key: str, asset: Mapping, index: int) -> AssetRef | None:
    href = asset.get("href")
    if not isinstance(href, str):
        return None
    return AssetRef(key, href, index, MappingProxyType(dict(_raster_band(asset, index))))


def locate_asset(
    item: Mapping[str, Any], keys: tuple[str, ...], *, common_name: str | None = None
) -> AssetRef | None:
    """The asset (and band in it) of the first matching key, band name or common name."""
    assets = item.get("assets") or {}
    if not isinstance(assets, Mapping):
        return None
    for want in keys:  # 1. asset key, exact then case-insensitive
        if isinstance(assets.get(want), Mapping):
            return _ref(want, assets[want], 1)
        for k, a in assets.items():
            if _key(k) == _key(want) and isinstance(a, Mapping):
                return _ref(k, a, 1)
    for want in keys:  # 2. band name inside (multi-band) data assets
        for k, a in assets.items():
            if not isinstance(a, Mapping) or _NON_DATA_ROLES & _roles(a):
                continue
            for i, b in enumerate(_band_list(a)):
                if b.get("name") == want:
                    return _ref(k, a, i + 1)
    if common_name:  # 3. common name of a single-band data asset
        for k, a in assets.items():
            if not isinstance(a, Mapping) or _NON_DATA_ROLES & _roles(a):
                continue
            bands = _band_list(a)
            names = {b.get("common_name") or b.get("eo:common_name") for b in bands}
            if len(bands) == 1 and common_name in names:
                return _ref(k, a, 1)
    return None


def resolve_same_id(first: ParsedItem, second: ParsedItem) -> ParsedItem:
    """The copy to keep of two items with one id: identical content, or newest `updated`.

    Raises `CatalogError` naming both sources when the content differs and neither is newer.
    """
    if first.fingerprint == second.fingerprint:
        return first
    if first.version != second.version:
        return max(first, second, key=lambda i: i.version)
    raise CatalogError(
        f"Two different items share the id {first.id!r} (from {first.source or first.catalog} "
        f"and {second.source or second.catalog}) and neither has a newer 'updated' time: "
        "remove the wrong one from the catalog, or set properties.updated on the genuine one."
    )
