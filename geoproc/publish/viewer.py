"""The offline map viewer of a run: one self-contained HTML page over the published tiles.

Why a hand-written viewer (``viewer_assets/viewer.js``, ~200 lines of plain JS) rather
than Leaflet/OpenLayers: the page must work from disk and from a bucket with no internet,
so nothing may come from a CDN, and an XYZ tile viewer with a layer switch, a date selector
and legends is small enough that vendoring a map library would add more than it saves. The
CSS, JS and the run manifest (layers, dates, the exact list of tiles written, legends) are
inlined into the page, because browsers refuse ``fetch`` of local JSON from ``file://``;
tiles are plain ``<img>`` elements with relative URLs, which load from disk and over HTTP.
Only tiles listed in the manifest are requested, so an empty tile never causes a 404.
"""

from __future__ import annotations

import json
from importlib import resources

_ASSETS = "geoproc.publish.viewer_assets"


def viewer_html(manifest: dict) -> bytes:
    """The page for a manifest (see `geoproc.publish.publisher` for its fields)."""
    assets = resources.files(_ASSETS)
    page = (assets / "viewer.html").read_text(encoding="utf-8")
    css = (assets / "viewer.css").read_text(encoding="utf-8")
    js = (assets / "viewer.js").read_text(encoding="utf-8")
    data = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    # Inside <script> only "</" can end the element early; "<\/" is the same JSON string.
    data = data.replace("</", "<\\/")
    page = page.replace("/*__CSS__*/", css).replace("/*__JS__*/", js)
    return page.replace("/*__MANIFEST__*/", data).encode("utf-8")
