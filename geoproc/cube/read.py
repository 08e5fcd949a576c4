"""The one reader seam: every asset read goes through `AssetReader` (as stackstac's Reader).

Why one place: the href policy, credentials (signing, GDAL headers), retries and error
classification used to be spread over the cube code and the flows, with two lists of
"transient" words. Here a read has exactly four outcomes:

* the values on the tile grid;
* ``None`` with the reason recorded in the step's errors (asset missing, 404, corrupt
  file, href refused by the policy): those pixels stay masked and the step is complete;
* `AssetCredentialsError` (exit 1) on HTTP 401/403 / access denied that outlives one
  re-sign: nothing is marked complete, the message names the catalog and the variable or
  file to set - a refused login is not a hole in the data, and a rerun with credentials
  fills the step;
* `EndpointUnavailableError` when transient failures (timeouts, resets, 429, 5xx)
  outlive the retries.

`Reader` is the raw decode (``RasterioReader``: GDAL, nearest-neighbour index map or a
warped VRT onto the tile grid); tests swap in a fake one. `is_transient` is the one rule
flows should use for ``retry_condition_fn``.
"""

from __future__ import annotations

import functools
import logging
import re
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlparse

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from geoproc.catalog.credentials import CredentialProvider, default_providers, provider_for
from geoproc.catalog.items import AssetRef, ParsedItem
from geoproc.errors import (
    CredentialsError,
    EndpointUnavailableError,
    GeoprocError,
    UntrustedHrefError,
    UsageError,
)
from geoproc.grid import Tile
from geoproc.href_policy import check_href, policy_for

log = logging.getLogger(__name__)

_TRANSIENT = (
    "timed out", "timeout", "connection", "temporar", "throttl", " 429", " 500", " 502",
    " 503", " 504", "reset by peer", "recv failure", "send failure", "couldn't connect",
    "could not connect", "connection refused", "response code: 429", "response code: 5",
    "response_code=5", "slowdown", "slow down",
)  # fmt: skip
_CREDENTIALS = (
    "response code: 401", "response code: 403", "http 401", "http 403", "401 unauthorized",
    "403 forbidden", "status 401", "status 403", "access denied", "accessdenied",
    "invalidaccesskeyid", "signaturedoesnotmatch", "expiredtoken", "authenticationfailed",
    "authorizationfailure", "authorizationpermissionmismatch", "noauthenticationinformation",
)  # fmt: skip
# GDAL's own HTTP retries (cpl_http, GDAL >= 3.10 docs "Configuration options": 429, 500,
# 502, 503, 504 and connection resets are retried with exponential back-off from
# GDAL_HTTP_RETRY_DELAY) absorb most transient faults inside one read; the timeouts bound
# a server that hangs.
GDAL_ENV = {
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    "GDAL_HTTP_RETRY_CODES": "429,500,502,503,504",
    "GDAL_HTTP_TIMEOUT": "60",
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff",
}


class AssetCredentialsError(CredentialsError):
    """An asset server refused the credentials (401/403) even after re-signing."""


def classify_message(message: str) -> str:
    """``credentials``, ``transient`` or ``permanent`` for a read error's text."""
    lower = message.lower()
    if any(t in lower for t in _CREDENTIALS):
        return "credentials"
    if any(t in lower for t in _TRANSIENT):
        return "transient"
    return "permanent"


def is_transient_message(message: str) -> bool:
    """True for errors a later attempt can fix: timeouts, resets, throttling, HTTP 5xx."""
    return classify_message(message) == "transient"


def is_transient(error: BaseException | str) -> bool:
    """The one retry rule (for flows' ``retry_condition_fn`` too).

    Endpoint failures and network errors: yes. Credentials and usage errors: never (a
    retry cannot fix them). Anything else: by its message.
    """
    if isinstance(error, str):
        return is_transient_message(error)
    if isinstance(error, EndpointUnavailableError):
        return True
    if isinstance(error, (CredentialsError, UsageError)):
        return False
    if isinstance(error, GeoprocError):
        return is_transient_message(str(error))
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    return is_transient_message(str(error))


def endpoint_of(href: str) -> str:
    """`scheme://host[:port]` of an href (what a user can check), or the href's folder."""
    parsed = urlparse(href)
    if parsed.scheme and parsed.netloc:
        return f"{parsed.scheme}://{parsed.netloc.rsplit('@', 1)[-1]}"
    return href.rsplit("/", 1)[0] or href


class Reader(Protocol):
    """Decode one band of one file onto the tile grid: ``(values, fill value)``.

    Raises an exception whose message says what went wrong (GDAL's text); `AssetReader`
    classifies it.
    """

    def read(
        self,
        href: str,
        band: int,
        tile: Tile,
        *,
        resampling: str,
        nodata,
        options: Mapping[str, str],
    ) -> tuple[np.ndarray, float]: ...


class RasterioReader:
    """GDAL through rasterio: an exact nearest-neighbour index map, or a warped VRT."""

    def read(self, href, band, tile, *, resampling, nodata, options):
        with rasterio.Env(**GDAL_ENV, **options):
            return _warp_read(href, band, tile, resampling, nodata)

    def server_failure(self, href: str, timeout: float = 10.0) -> str | None:
        """How the server fails a one-byte request for `href` (HTTP 5xx/429, no connection),
        or None where it answers (or `href` is not HTTP).

        Why: once GDAL's own HTTP retries are spent it may report a file it never received
        as "not recognized as being in a supported file format", which reads as a
        permanent fault: the asset was masked, and a step whose every asset a dying server
        failed was marked complete, all NaN."""
        import urllib.error
        import urllib.request

        url = href.removeprefix("/vsicurl/")
        if not url.startswith(("http://", "https://")):
            return None
        request = urllib.request.Request(url, headers={"Range": "bytes=0-0"})
        try:
            with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310 - http(s) only
                return None
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}" if exc.code >= 500 or exc.code == 429 else None
        except (urllib.error.URLError, OSError) as exc:
            return f"no answer ({exc})"


@dataclass
class AssetReader:
    """Policy, credentials, retries and classification around a `Reader`."""

    reader: Reader = field(default_factory=RasterioReader)
    providers: Sequence[CredentialProvider] = field(default_factory=default_providers)
    retries: int = 3
    """Extra attempts for transient failures."""
    backoff: float = 1.0
    """Seconds before the first retry (doubling, at most 8 s)."""

    def read(
        self, item: ParsedItem, ref: AssetRef, tile: Tile, *, resampling: str, nodata, errors: list
    ) -> tuple[np.ndarray, float] | None:
        """Values on the tile grid, or None with the reason appended to `errors`."""
        href = ref.href
        try:
            check_href(href, policy_for(item.catalog))
        except UntrustedHrefError as exc:
            log.warning("asset %s of %s refused: %s", ref.key, item.id, exc)
            errors.append({"item": item.id, "asset": ref.key, "href": href, "error": str(exc)})
            return None
        provider = provider_for(href, self.providers)
        resigned = False
        attempt = 0
        while True:
            opened = provider.sign(href) if provider else href
            options = dict(provider.gdal_options(href)) if provider else {}
            if attempt or resigned:
                # GDAL caches a failed HTTP open; a retry must not be answered from that cache.
                options["CPL_VSIL_CURL_NON_CACHED"] = _vsi_prefix(opened.split("?", 1)[0])
            try:
                return self.reader.read(
                    opened,
                    ref.band_index,
                    tile,
                    resampling=resampling,
                    nodata=nodata,
                    options=options,
                )
            except (rasterio.errors.RasterioError, OSError, ValueError) as exc:
                message = _scrub_query(str(exc))
            kind = classify_message(message)
            if kind == "credentials":
                if provider is not None and not resigned:
                    provider.refresh(href)
                    resigned = True
                    continue
                raise AssetCredentialsError(_credentials_message(item, ref, provider, message))
            if kind == "permanent":
                probe = getattr(self.reader, "server_failure", None)
                failure = probe(opened) if probe is not None else None
                if failure is None:
                    log.warning("asset %s of %s unreadable, masked: %s", ref.key, item.id, message)
                    errors.append(
                        {"item": item.id, "asset": ref.key, "href": href, "error": message}
                    )
                    return None
                message = f"{message.strip()[:120]}; the server answers {failure}"
            if attempt < self.retries:
                _time.sleep(min(self.backoff * 2**attempt, 8))
                attempt += 1
                continue
            raise EndpointUnavailableError(
                f"{endpoint_of(href)} kept failing while reading asset {ref.key} of item "
                f"{item.id} ({message.strip()[:200]}) after {self.retries + 1} "
                "attempts: check that the server is up, or rerun later (finished steps are kept)."
            )


def _scrub_query(message: str) -> str:
    """Drop URL query strings (SAS tokens) from an error message."""
    return re.sub(r"\?[^\s'\"]*", "?...", message)


def _credentials_message(item: ParsedItem, ref: AssetRef, provider, message: str) -> str:
    catalog = item.catalog or "the local catalog"
    if provider is not None:
        what = f"set {provider.hint}"
    elif ref.href.startswith("s3://"):
        what = "set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) for the bucket"
    else:
        what = "give GDAL the credentials (GDAL_HTTP_HEADERS, GDAL_HTTP_AUTH or ~/.netrc)"
    return (
        f"{endpoint_of(ref.href)} refused the credentials for asset {ref.key} of item {item.id} "
        f"from catalog {catalog} ({message.strip()[:160]}): {what}, then rerun (nothing of "
        "this step was marked complete)."
    )


def _vsi_prefix(href: str) -> str:
    if href.startswith(("http://", "https://")):
        return f"/vsicurl/{href}"
    if href.startswith("s3://"):
        return f"/vsis3/{href[5:]}"
    return href


def _warp_read(
    href: str, bidx: int, tile: Tile, resampling: str, nodata
) -> tuple[np.ndarray, float]:
    with rasterio.open(href) as src:
        src_nodata = src.nodata if src.nodata is not None else nodata
        dtype = src.dtypes[bidx - 1]
        fill = (
            src_nodata if src_nodata is not None else (np.nan if np.dtype(dtype).kind == "f" else 0)
        )
        if resampling == "nearest" and src.crs is not None:
            # Nearest neighbour by an exact per-pixel index map (cached per source grid and
            # tile, so the 10+ bands of a granule and its repeat passes share it): one
            # windowed read of the source, no GDAL warper set-up per asset.
            pmap = _pixel_map(src.crs.to_wkt(), tuple(src.transform)[:6], src.shape, tile)
            out = np.full(tile.shape, fill, dtype=dtype)
            if pmap is not None:
                (r0, c0, r1, c1), dst, src_index = pmap
                block = src.read(bidx, window=rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0))
                if isinstance(dst, tuple):  # same grid, pure shift: a slice copy
                    out[dst] = block
                else:
                    out.ravel()[dst] = block.ravel()[src_index]
            return out, fill
        with WarpedVRT(
            src,
            crs=tile.crs,
            transform=tile.transform,
            width=tile.tile_size_px,
            height=tile.tile_size_px,
            resampling=Resampling[resampling],
            src_nodata=src_nodata,
            nodata=fill,
            tolerance=1e-6,  # near-exact transform: the default 0.125 px approximation moves pixels
        ) as vrt:
            return vrt.read(bidx), fill


@functools.lru_cache(maxsize=8)
def _pixel_map(src_wkt: str, src_transform: tuple, src_shape: tuple, tile: Tile):
    """Source (row, col) of every tile pixel centre, the in-source mask and the read window."""
    shifted = _pure_shift(src_wkt, src_transform, src_shape, tile)
    if shifted is not False:
        return shifted
    transformer = Transformer.from_crs(tile.epsg, CRS.from_wkt(src_wkt), always_xy=True)
    xs, ys = np.meshgrid(tile.x_coords, tile.y_coords)
    sx, sy = transformer.transform(xs, ys)
    inverse = ~Affine(*src_transform)
    colf, rowf = inverse * (sx, sy)
    rows = np.floor(rowf).astype(np.int64)
    cols = np.floor(colf).astype(np.int64)
    inside = (rows >= 0) & (cols >= 0) & (rows < src_shape[0]) & (cols < src_shape[1])
    inside &= np.isfinite(rowf) & np.isfinite(colf)
    if not inside.any():
        return None
    r, c = rows[inside], cols[inside]
    window = (int(r.min()), int(c.min()), int(r.max()) + 1, int(c.max()) + 1)
    r0, c0, r1, c1 = window
    ti, tj = np.nonzero(inside)
    if (
        np.array_equal(r - r0, ti - ti.min())
        and np.array_equal(c - c0, tj - tj.min())
        and ti.size == (r1 - r0) * (c1 - c0)
    ):
        dst = (slice(int(ti.min()), int(ti.max()) + 1), slice(int(tj.min()), int(tj.max()) + 1))
        return window, dst, None
    dst_index = np.flatnonzero(inside)
    src_index = (r - r0) * (c1 - c0) + (c - c0)
    return window, dst_index, src_index


def _pure_shift(src_wkt: str, src_transform: tuple, src_shape: tuple, tile: Tile):
    """The window and slices when the source grid is the tile's grid shifted by whole pixels
    (every HLS/S2 granule in its own UTM zone): no per-pixel index arrays (~80 MiB per
    1024² tile). False when the grids differ, so the general mapping is used."""
    a = Affine(*src_transform)
    res = tile.resolution
    if a.b != 0 or a.d != 0 or a.a != res or a.e != -res:
        return False
    dc = (tile.bounds[0] - a.c) / res
    dr = (a.f - tile.bounds[3]) / res
    if abs(dc - round(dc)) > 1e-9 or abs(dr - round(dr)) > 1e-9:
        return False
    if CRS.from_wkt(src_wkt).to_epsg(min_confidence=100) != tile.epsg:
        return False
    col0, row0 = int(round(dc)), int(round(dr))
    n_rows, n_cols = tile.shape
    ti0, ti1 = max(0, -row0), min(n_rows, src_shape[0] - row0)
    tj0, tj1 = max(0, -col0), min(n_cols, src_shape[1] - col0)
    if ti0 >= ti1 or tj0 >= tj1:
        return None
    window = (row0 + ti0, col0 + tj0, row0 + ti1, col0 + tj1)
    return window, (slice(ti0, ti1), slice(tj0, tj1)), None
