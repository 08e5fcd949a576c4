"""A run request, validated before anything is written.

`RunRequest` is what the CLI, the flows and library users hand to the pipeline: products,
area, dates, catalog and output. Validation happens here, once, so that a bad value fails
with a message naming the argument before any store is touched.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from geoproc.errors import CatalogError, InvalidDateError, UnknownNameError, UsageError
from geoproc.sensors import profile_for
from geoproc.storage import Location, parse_url

PRODUCTS = ("flood", "lst", "canopy")
DEFAULT_COLLECTIONS = ("HLSL30_2.0", "HLSS30_2.0", "sentinel-1-rtc")


def parse_date(text: str | date, *, argument: str) -> date:
    """A calendar date from `YYYY-MM-DD` (or a date object)."""
    if isinstance(text, datetime):
        return text.date()
    if isinstance(text, date):
        return text
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise InvalidDateError(
            f"{argument} {text!r} is not a date: write it as YYYY-MM-DD, e.g. 2024-06-01."
        ) from None


def parse_date_range(start: str | date, end: str | date) -> tuple[date, date]:
    """(start, end), inclusive, refusing reversed ranges."""
    s = parse_date(start, argument="--start")
    e = parse_date(end, argument="--end")
    if e < s:
        raise InvalidDateError(f"--end {e} is before --start {s}: swap them or pick a later --end.")
    return s, e


def parse_products(names: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Product names from a comma list; unknown names are a usage error."""
    items = [
        n.strip().lower()
        for n in (names.split(",") if isinstance(names, str) else names)
        if n.strip()
    ]
    if not items:
        raise UsageError(f"No product given: pass one or more of {', '.join(PRODUCTS)}.")
    unknown = [n for n in items if n not in PRODUCTS]
    if unknown:
        raise UnknownNameError(
            f"Unknown product {unknown[0]!r}: choose from {', '.join(PRODUCTS)}."
        )
    return tuple(dict.fromkeys(items))


def parse_collections(names: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Collection ids from a comma list, each checked against the sensor profiles."""
    items = [
        n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()
    ]
    if not items:
        raise UsageError("No collection given: pass --collections, e.g. HLSL30_2.0,HLSS30_2.0.")
    for n in items:
        profile_for(n)
    return tuple(dict.fromkeys(items))


def check_catalog(url: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """Fetch the catalog's landing page; a catalog that does not answer is named in the error."""
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--catalog {url!r} is not an http(s) URL of a STAC API.")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            landing = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CatalogError(
            f"The STAC catalog at {url} does not answer ({reason}): check --catalog, or start a "
            "local one with `geoproc stac serve DIR`."
        ) from None
    if not isinstance(landing, dict) or "links" not in landing:
        raise CatalogError(
            f"{url} answered, but not with a STAC API landing page: check --catalog."
        )
    return landing


@dataclass(frozen=True)
class RunRequest:
    """Everything a run needs; build it with `RunRequest.create` to validate."""

    products: tuple[str, ...]
    """Products to make (`flood`, `lst`, `canopy`)."""
    aoi: Any
    """Area of interest as given (bbox string, GeoJSON path, tile ids); the grid parses it."""
    start: date
    """First day, inclusive."""
    end: date
    """Last day, inclusive."""
    catalog: str
    """STAC API root URL."""
    out: Location
    """Output root (local, file:// or s3://)."""
    collections: tuple[str, ...] = DEFAULT_COLLECTIONS
    """Collections to search."""
    options: dict[str, Any] = field(default_factory=dict)
    """Per-stage options (tile size, cloud limit, ...)."""

    @classmethod
    def create(
        cls,
        *,
        products: str | list[str],
        aoi: Any,
        start: str | date,
        end: str | date,
        catalog: str,
        out: str,
        collections: str | list[str] = DEFAULT_COLLECTIONS,
        options: dict[str, Any] | None = None,
    ) -> RunRequest:
        s, e = parse_date_range(start, end)
        return cls(
            products=parse_products(products),
            aoi=aoi,
            start=s,
            end=e,
            catalog=catalog.rstrip("/"),
            out=parse_url(out),
            collections=parse_collections(collections),
            options=dict(options or {}),
        )
