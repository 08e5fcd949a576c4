"""The offline map viewer of a run: a Leaflet page over the published web tiles.

Why Leaflet (vendored from the npm registry into ``viewer_assets/vendor/leaflet``, see
`LEAFLET_VERSION`): the page must work opened from disk (``file://``) and from a bucket
without internet. Leaflet draws raster XYZ tiles as plain ``<img>`` elements, which load
from disk and over HTTP alike, and brings zoom, pan, overzoom beyond the deepest published
zoom, opacity and a scale bar; MapLibre GL would need ``fetch`` (refused on ``file://``)
and WebGL. The library files are written next to the pages (``viewer/vendor/leaflet/``);
the page's own CSS, JS and the run manifest (layers, dates, the exact list of tiles
written, legends, the opening date) are inlined, because browsers refuse ``fetch`` of local
JSON from ``file://``. Only tiles listed in the manifest are requested, so an empty tile
never causes a 404. Clicked values and time series come from the value payloads next to
the tiles (`geoproc.publish.web_tiles.value_payload`), loaded as ``<script>`` elements.
"""

from __future__ import annotations

import json
from importlib import resources

_ASSETS = "geoproc.publish.viewer_assets"
LEAFLET_VERSION = "1.9.4"
"""npm ``leaflet@1.9.4`` (BSD-2-Clause), files copied unchanged from its ``dist/``."""
VENDOR_FILES = ("vendor/leaflet/leaflet.js", "vendor/leaflet/leaflet.css", "vendor/leaflet/LICENSE")
_PAGE_FIELDS_DROPPED = ("fingerprints", "class_counts")
"""layer.json fields the page does not use (publisher bookkeeping)."""


def viewer_files() -> dict[str, bytes]:
    """The static files the page loads, relative to the page's folder (written beside it)."""
    assets = resources.files(_ASSETS)
    out = {}
    for relpath in VENDOR_FILES:
        node = assets
        for part in relpath.split("/"):
            node = node / part
        out[relpath] = node.read_bytes()
    return out


def opening_date(layer: dict) -> str | None:
    """The date the page opens on: the flood peak for layers with a flood class, else the latest.

    The peak is the date with the most web pixels (at the deepest zoom) in classes whose name
    contains "flood"; ties go to the later date.
    """
    dates = list(layer.get("dates", []))
    if not dates:
        return None
    classes = layer.get("legend", {}).get("classes", [])
    flood = {str(c["value"]) for c in classes if "flood" in str(c.get("name", ""))}
    counts = layer.get("class_counts", {})
    if flood and counts:
        area = {d: sum(counts.get(d, {}).get(v, 0) for v in flood) for d in dates}
        best = max(dates, key=lambda d: (area[d], d))
        if area[best] > 0:
            return best
    return dates[-1]


def viewer_html(manifest: dict) -> bytes:
    """The page for a manifest (see `geoproc.publish.publisher` for its fields)."""
    layers = [
        {
            **{k: v for k, v in layer.items() if k not in _PAGE_FIELDS_DROPPED},
            "open_date": opening_date(layer),
        }
        for layer in manifest.get("layers", [])
    ]
    manifest = {**manifest, "layers": layers, "leaflet": LEAFLET_VERSION}
    assets = resources.files(_ASSETS)
    page = (assets / "viewer.html").read_text(encoding="utf-8")
    css = (assets / "viewer.css").read_text(encoding="utf-8")
    js = (assets / "viewer.js").read_text(encoding="utf-8")
    data = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    # Inside <script> only "</" can end the element early; "<\/" is the same JSON string.
    data = data.replace("</", "<\\/")
    page = page.replace("/*__CSS__*/", css).replace("/*__JS__*/", js)
    return page.replace("/*__MANIFEST__*/", data).encode("utf-8")
