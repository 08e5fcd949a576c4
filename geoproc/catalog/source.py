"""What ``--catalog`` may be, and how its items are streamed - bounded - into a search.

Three kinds, for every command (`classify_catalog`, `iter_catalog_items`):

* ``api``: an ``http(s)://`` STAC API root, searched with pystac-client page by page;
* ``static``: a static STAC catalog or collection file (``catalog.json``, ``collection.json``)
  on local disk, ``http(s)://`` or ``s3://``, walked with pystac (child and item links);
* ``folder``: a local folder of item JSON files (or one FeatureCollection / item file).

Bounds (issue #18.1): a search stops with `SearchLimitError` naming the catalog and the
limit when it passes ``GEOPROC_SEARCH_MAX_ITEMS`` (default 100,000) items,
``GEOPROC_SEARCH_MAX_PAGES`` (10,000) pages or ``GEOPROC_SEARCH_MAX_SECONDS`` (1,800 s),
or when the API repeats a ``next`` link or a page (a server whose paging loops). Pages are
consumed one at a time and never kept, so memory stays flat while paging.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from geoproc.catalog.items import ParsedItem, parse_item
from geoproc.errors import CatalogError, CredentialsError, UsageError

STATIC_NAMES = ("catalog.json", "collection.json")


class SearchLimits(BaseSettings):
    """Bounds on one catalog search (environment: ``GEOPROC_SEARCH_*``)."""

    model_config = SettingsConfigDict(env_prefix="GEOPROC_SEARCH_", extra="ignore")

    max_items: int = 100_000
    """Items one search may return before it is stopped."""
    max_pages: int = 10_000
    """Pages one API search may return before it is stopped."""
    max_seconds: float = 1800.0
    """Wall time one search may take before it is stopped."""


class CatalogArgumentError(UsageError):
    """``--catalog`` is none of the three kinds (exit 2, nothing is read or written)."""


class SearchLimitError(CatalogError):
    """A search passed one of its bounds, or the catalog's paging repeated itself."""


@dataclass(frozen=True)
class CatalogSource:
    """A classified ``--catalog`` value."""

    kind: str
    """``api``, ``static`` or ``folder``."""
    location: str
    """The URL or path as given (trailing slash removed for APIs)."""


def classify_catalog(catalog: str | os.PathLike) -> CatalogSource:
    """The kind of a ``--catalog`` value (no network access; local paths must exist).

    Commands call this once at the edge (instead of an http-only check) so ``run``,
    ``backfill`` and ``cube build`` accept the same three kinds.
    """
    text = os.fspath(catalog).strip()
    lower = text.lower().split("?", 1)[0]
    if lower.startswith(("http://", "https://", "s3://")):
        if lower.endswith(".json"):
            return CatalogSource("static", text)
        if lower.startswith("s3://"):
            raise CatalogArgumentError(
                f"--catalog {text!r} is an s3:// URL but not a .json file: pass the URL of the "
                "static catalog's catalog.json."
            )
        return CatalogSource("api", text.rstrip("/"))
    path = Path(text)
    if not path.exists():
        raise CatalogArgumentError(
            f"--catalog {text!r} is neither an http(s) STAC API URL, a static catalog.json nor "
            "an existing folder of item files: pass one of those."
        )
    if path.is_file() and _is_static_root(path):
        return CatalogSource("static", str(path))
    return CatalogSource("folder", str(path))


def _is_static_root(path: Path) -> bool:
    if path.name in STATIC_NAMES:
        return True
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("type") in ("Catalog", "Collection")


class _Budget:
    """Counts items, pages and seconds of one search against its limits."""

    def __init__(self, shown: str, limits: SearchLimits):
        self.shown, self.limits = shown, limits
        self.items = self.pages = 0
        self.t0 = time.monotonic()

    def loop(self, what: str) -> SearchLimitError:
        return SearchLimitError(
            f"The search of {self.shown} stopped: page {self.pages} repeats an earlier {what}, "
            "so its paging would never end. Report it to the catalog's operator, or narrow "
            "--aoi/--start/--end so the result fits in one page."
        )

    def _stop(self, what: str, setting: str, value) -> SearchLimitError:
        return SearchLimitError(
            f"The search of {self.shown} stopped: {what} (limit {setting}={value}). Narrow "
            f"--aoi/--start/--end or --collections, or raise {setting}."
        )

    def page(self) -> None:
        self.pages += 1
        if self.pages > self.limits.max_pages:
            raise self._stop(
                f"more than {self.limits.max_pages} pages",
                "GEOPROC_SEARCH_MAX_PAGES",
                self.limits.max_pages,
            )
        self._clock()

    def item(self) -> None:
        self.items += 1
        if self.items > self.limits.max_items:
            raise self._stop(
                f"more than {self.limits.max_items} items",
                "GEOPROC_SEARCH_MAX_ITEMS",
                self.limits.max_items,
            )
        if self.items % 1000 == 0:
            self._clock()

    def _clock(self) -> None:
        if time.monotonic() - self.t0 > self.limits.max_seconds:
            raise self._stop(
                f"it took more than {self.limits.max_seconds:g} s",
                "GEOPROC_SEARCH_MAX_SECONDS",
                self.limits.max_seconds,
            )


def iter_catalog_items(
    catalog: str | os.PathLike,
    *,
    collections: Iterable[str],
    intersects: dict | None = None,
    datetime_range: tuple | None = None,
    page_size: int = 100,
    limits: SearchLimits | None = None,
    headers: dict[str, str] | None = None,
    accept: Iterable[str] | None = None,
) -> Iterator[ParsedItem | dict]:
    """Stream the catalog's items (API: filtered by the server; static/folder: by collection only).

    An API is asked for `collections` exactly as given (an id it does not know may be an
    error there); static catalogs and folders keep items of `accept` (default:
    `collections`), e.g. every public alias of the requested profiles.

    Yields `ParsedItem` for items that parse and ``{"id", "reason", "source"}`` dicts for
    entries that do not (the caller records them as drops).
    """
    source = classify_catalog(catalog)
    limits = limits or SearchLimits()
    from geoproc.redact import redact_url

    budget = _Budget(redact_url(source.location), limits)
    wanted = set(accept) if accept is not None else set(collections)
    if source.kind == "api":
        docs = _api_items(
            source.location,
            set(collections),
            intersects,
            datetime_range,
            page_size,
            budget,
            headers,
        )
    elif source.kind == "static":
        docs = _static_items(source.location, budget)
    else:
        docs = _folder_items(Path(source.location))
    origin = source.location if source.kind != "folder" else os.fspath(catalog)
    for doc, where in docs:
        budget.item()
        if source.kind != "api" and isinstance(doc, dict):
            collection = doc.get("collection")
            if not isinstance(collection, str) or collection not in wanted:
                continue
        try:
            yield parse_item(doc, catalog=origin, source=where)
        except CatalogError as exc:
            item_id = doc.get("id") if isinstance(doc, dict) else None
            yield {"id": item_id, "reason": "unparseable", "detail": str(exc), "source": where}


def _api_items(url, collections, intersects, datetime_range, page_size, budget, headers):
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    from geoproc.catalog.search import api_io
    from geoproc.redact import scrub

    shown = budget.shown
    try:
        client = Client.open(url, stac_io=api_io(headers or {}))
        search = client.search(
            collections=sorted(collections),
            intersects=intersects,
            datetime=list(datetime_range) if datetime_range else None,
            limit=page_size,
        )
        seen_links: set[str] = set()
        seen_pages: set[str] = set()
        for page in search.pages_as_dicts():
            budget.page()
            features = page.get("features") or []
            digest = hashlib.sha256(
                json.dumps([f.get("id") for f in features if isinstance(f, dict)]).encode()
            ).hexdigest()
            if features and digest in seen_pages:
                raise budget.loop("page (same items)")
            seen_pages.add(digest)
            nxt = next(
                (
                    link
                    for link in page.get("links") or []
                    if isinstance(link, dict) and link.get("rel") == "next"
                ),
                None,
            )
            if nxt is not None:
                key = json.dumps([nxt.get("href"), nxt.get("body")], sort_keys=True, default=str)
                if key in seen_links:
                    raise budget.loop("'next' link")
                seen_links.add(key)
            for feature in features:
                yield feature, f"{shown} (page {budget.pages})"
    except APIError as exc:
        status = getattr(exc, "status_code", None)
        if status in (401, 403):
            raise CredentialsError(
                f"The STAC API at {shown} refused the credentials (HTTP {status}): set "
                "GEOPROC_CATALOG_TOKEN to a valid token for this catalog."
            ) from None
        raise CatalogError(
            f"The STAC API at {shown} refused the search ({scrub(str(exc))[:300]}); check "
            "--catalog and --collections."
        ) from None
    except OSError as exc:
        raise CatalogError(
            f"The STAC API at {shown} did not answer ({scrub(str(exc))[:300]}); check --catalog."
        ) from None


def _static_items(location: str, budget: _Budget):
    """Walk a static catalog's child and item links (pystac), bounded like an API.

    Relative asset hrefs come out absolute, as from the folder kind (`_folder_items`).
    """
    import pystac

    try:
        root = pystac.read_file(location, stac_io=_stac_io())
    except Exception as exc:  # noqa: BLE001 - any read failure is the catalog's, name it
        raise CatalogError(
            f"--catalog {budget.shown} could not be read as a static STAC catalog ({str(exc)[:200]}): "
            "pass the URL or path of its catalog.json."
        ) from None
    if not isinstance(root, pystac.Catalog):
        raise CatalogError(
            f"--catalog {budget.shown} is a STAC {root.STAC_OBJECT_TYPE}, not a catalog."
        )
    seen: set[str] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        budget.page()
        for link in node.get_item_links():
            href = link.get_absolute_href() or link.href
            if href in seen:
                continue
            seen.add(href)
            item = link.resolve_stac_object(root=root).target
            # "./B04.tif" is relative to the item file, not to this process's CWD: resolve
            # it against the item's own href (a path, an http(s) or an s3:// URL).
            item.make_asset_hrefs_absolute()
            yield item.to_dict(include_self_link=False, transform_hrefs=True), href
        for link in node.get_child_links():
            href = link.get_absolute_href() or link.href
            if href in seen:
                continue  # a catalog whose children loop is walked once
            seen.add(href)
            stack.append(link.resolve_stac_object(root=root).target)


def _stac_io():
    """pystac IO that also reads ``s3://`` (through geoproc.storage's credentials)."""
    from pystac.stac_io import DefaultStacIO

    class _StorageIO(DefaultStacIO):
        def read_text(self, source, *args, **kwargs) -> str:
            href = str(source if isinstance(source, str) else getattr(source, "href", source))
            if href.startswith("s3://"):
                from geoproc import storage

                return storage.read_bytes(href).decode()
            return super().read_text(source, *args, **kwargs)

    return _StorageIO()


def _folder_items(path: Path):
    files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    for f in files:
        try:
            doc = json.loads(f.read_text())
        except (OSError, ValueError) as exc:
            yield {"id": None, "_unreadable": str(exc)[:200]}, str(f)
            continue
        if not isinstance(doc, dict):
            continue
        feats = doc.get("features", []) if doc.get("type") == "FeatureCollection" else [doc]
        for item in feats:
            if not isinstance(item, dict) or item.get("type") != "Feature":
                continue
            assets = item.get("assets")
            for asset in assets.values() if isinstance(assets, dict) else []:
                href = asset.get("href", "") if isinstance(asset, dict) else ""
                if (
                    isinstance(href, str)
                    and href
                    and "://" not in href
                    and not href.startswith("/")
                ):
                    asset["href"] = str((f.parent / href).resolve())
            yield item, str(f)
