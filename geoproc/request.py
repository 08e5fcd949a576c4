"""A run request, validated before anything is written.

`RunRequest` is what the CLI, the flows and library users hand to the pipeline: products,
area, dates, catalog and output. Validation happens here, once, so that a bad value fails
with a message naming the argument before any store is touched.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from geoproc.catalog.sensors import profile_for
from geoproc.errors import (
    CatalogError,
    CredentialsError,
    InvalidDateError,
    UnknownNameError,
    UsageError,
)
from geoproc.product_registry import PRODUCT_NAMES as PRODUCTS

if TYPE_CHECKING:  # storage pulls fsspec and settings; the CLI parser imports this module
    from geoproc.storage import Location

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


NOW = "now"
"""The --end value (also its default) meaning today, UTC, resolved when the request is made."""

_DURATION = re.compile(r"-?P(?=\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?")


def is_relative(start: str | date) -> bool:
    """Whether --start is an ISO-8601 duration (``-P30D``, ``P1M``): a rolling window."""
    return isinstance(start, str) and start.strip().upper().lstrip("-").startswith("P")


def parse_end(end: str | date | None, *, today: date | None = None) -> date:
    """--end as a date; omitted or ``now`` is today (UTC) at the time of the request."""
    if end is None or (isinstance(end, str) and end.strip().lower() in ("", NOW)):
        return today or datetime.now(UTC).date()
    return parse_date(end, argument="--end")


def parse_duration_start(text: str, end: date) -> date:
    """The first day of a rolling window: `end` minus an ISO-8601 date duration.

    ``-P30D`` (or ``P30D``) is 30 days before --end, ``-P2W`` two weeks, ``-P1M`` one
    calendar month (clipped to the month's last day, dateutil's `relativedelta`, a pandas
    dependency, rather than hand-written month arithmetic). Time parts (``PT6H``) are refused:
    the windows are whole days.
    """
    from dateutil.relativedelta import relativedelta

    match = _DURATION.fullmatch(text.strip().upper())
    if not match:
        raise InvalidDateError(
            f"--start {text!r} is neither a date nor an ISO-8601 duration: write YYYY-MM-DD or "
            "a window before --end such as -P30D (30 days), -P2W or -P1M."
        )
    years, months, weeks, days = (int(g or 0) for g in match.groups())
    try:
        return end - relativedelta(years=years, months=months, weeks=weeks, days=days)
    except (OverflowError, ValueError):
        raise InvalidDateError(
            f"--start {text!r} reaches before the year 1: pick a shorter duration."
        ) from None


def parse_date_range(
    start: str | date, end: str | date | None = NOW, *, today: date | None = None
) -> tuple[date, date]:
    """(start, end), inclusive, refusing reversed ranges.

    --start may be a duration before --end (a rolling window, see `parse_duration_start`);
    --end may be omitted or ``now`` (today, UTC).
    """
    e = parse_end(end, today=today)
    if is_relative(start):
        s = parse_duration_start(str(start), e)
    else:
        s = parse_date(start, argument="--start")
    if e < s:
        raise InvalidDateError(f"--end {e} is before --start {s}: swap them or pick a later --end.")
    return s, e


def window_parameters(start: str | date, end: str | date | None) -> tuple[str, str]:
    """(start, end) as a deployment stores them: a rolling window stays relative (each
    scheduled run resolves it on its own day); fixed dates are stored as ISO dates."""
    parse_date_range(start, end)  # refuse a bad window now, not at the first scheduled run
    end_text = NOW if end is None or str(end).strip().lower() in ("", NOW) else str(end)
    if end_text != NOW:
        end_text = str(parse_end(end_text))
    start_text = (
        str(start).strip() if is_relative(start) else str(parse_date(start, argument="--start"))
    )
    return start_text, end_text


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


def check_catalog(
    url: str, *, timeout: float = 10.0, attempts: int = 4, retry_delay: float = 0.5
) -> dict[str, Any]:
    """Fetch a STAC API's landing page; a catalog that does not answer is named in the error.

    A static catalog.json or a folder of item files (see `classify_catalog`) returns ``{}``
    without network access: the search reads those and names them when they fail.

    Throttling (429), 5xx and dropped connections are retried `attempts` times with
    doubling delays; refused credentials (401/403) are a `CredentialsError` at once.
    """
    from geoproc.catalog.source import classify_catalog
    from geoproc.redact import redact_url
    from geoproc.settings import get_settings

    if classify_catalog(url).kind != "api":
        return {}  # a static catalog or a folder has no landing page: the search reads it
    shown = redact_url(url)
    request = urllib.request.Request(url, headers=get_settings().catalog_headers())
    reason: object = None
    landing: Any = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(retry_delay * 2 ** (attempt - 1))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise CredentialsError(
                    f"The STAC catalog at {shown} refused the credentials (HTTP {exc.code}): set "
                    "GEOPROC_CATALOG_TOKEN to a valid token for this catalog."
                ) from None
            reason = f"HTTP {exc.code}"
            if exc.code in (429, 500, 502, 503, 504):
                continue
            break
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ConnectionRefusedError):
                break  # nothing listens there: retrying will not help
            continue
        try:
            landing = json.loads(body)
        except ValueError:
            raise CatalogError(
                f"{shown} answered, but not with JSON: check --catalog (the STAC API root URL)."
            ) from None
        break
    if landing is None:
        raise CatalogError(
            f"The STAC catalog at {shown} does not answer ({reason}): check --catalog, or start "
            "a local one with `geoproc stac serve DIR`."
        )
    if not isinstance(landing, dict) or "links" not in landing:
        raise CatalogError(
            f"{shown} answered, but not with a STAC API landing page: check --catalog."
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
    """STAC API root URL, static catalog.json (local, s3://, http) or folder of item files."""
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
        end: str | date | None = NOW,
        catalog: str,
        out: str,
        collections: str | list[str] = DEFAULT_COLLECTIONS,
        options: dict[str, Any] | None = None,
    ) -> RunRequest:
        from geoproc.catalog.source import classify_catalog
        from geoproc.plan import check_request_size
        from geoproc.storage import parse_url

        s, e = parse_date_range(start, end)
        source = classify_catalog(catalog)  # the same three kinds as `cube build` (exit 2)
        _check_aoi(aoi)
        _check_options(options or {})
        chosen = parse_collections(collections)
        # the size is known before any tile is enumerated: refuse a continent x decades here
        check_request_size(
            aoi, s, e, chosen,
            tile_size_px=(options or {}).get("tile_size_px", 1024),
            resolution=(options or {}).get("resolution", 30.0),
        )  # fmt: skip
        return cls(
            products=parse_products(products),
            aoi=aoi,
            start=s,
            end=e,
            catalog=source.location,
            out=parse_url(out),
            collections=chosen,
            options=dict(options or {}),
        )


def _check_aoi(aoi: Any) -> None:
    """Parse the AOI once here so a bad one fails before any server or store is touched."""
    from geoproc.grid import parse_aoi

    if aoi is None or (isinstance(aoi, str) and not aoi.strip()):
        raise UsageError(
            "--aoi is empty: pass WEST,SOUTH,EAST,NORTH in degrees, a GeoJSON file or tile ids."
        )
    parse_aoi(aoi)


def _check_options(options: dict[str, Any]) -> None:
    """The numeric options every run reads (the same limits as the CLI's flags)."""
    chunk = options.get("timeseries_time_chunk")
    if (
        chunk is not None
        and chunk != "all"
        and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1)
    ):
        raise UsageError(
            f"timeseries_time_chunk (--timeseries-copy) {chunk!r}: pass a whole number of "
            "dates >= 1 or `all`."
        )
    size = options.get("tile_size_px", 1024)
    if isinstance(size, bool) or not isinstance(size, int) or size < 16:
        raise UsageError(f"tile_size_px (--tile-size) {size!r} is not a whole number >= 16.")
    cloud = options.get("max_cloud_cover", 80.0)
    if isinstance(cloud, bool) or not isinstance(cloud, int | float) or not 0 <= cloud <= 100:
        raise UsageError(
            f"max_cloud_cover (--max-cloud-cover) {cloud!r} is not a 0..100 percentage."
        )
    resolution = options.get("resolution", 30.0)
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, int | float)
        or not 0 < resolution <= 10_000
    ):
        raise UsageError(
            f"resolution {resolution!r} is not a pixel size in metres (0 < r <= 10000)."
        )
