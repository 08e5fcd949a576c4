"""Which asset hrefs from a catalog geoproc may read: an allow-list of schemes and hosts.

Why: an asset href is data from someone else's server, and GDAL will open whatever it is
given - ``/etc/passwd``, ``/vsicurl/http://169.254.169.254/...`` (cloud metadata with
credentials), ``/vsizip/...``, driver prefixes like ``NETCDF:...``. A hostile or broken
catalog must not be able to make a run read local files or internal addresses
(OWASP "Server-Side Request Forgery Prevention Cheat Sheet": allow-list schemes and
destinations, resolve names and refuse internal addresses, no redirects to them).

Rules (`check_href`):

* schemes ``https``, ``http`` and ``s3`` only; GDAL virtual paths (``/vsi...``) and driver
  prefixes (``HDF5:``, ``NETCDF:``, ...) never;
* local files (plain paths, ``file://``) only when the catalog itself is local - a folder,
  a file, or an API on loopback such as ``geoproc stac serve`` (only someone on this
  machine can start one) - or with ``GEOPROC_ALLOW_LOCAL_ASSETS=true``;
* for a remote catalog, an http(s) host that is, or resolves to, a loopback, private,
  link-local or reserved address is refused unless it is the catalog's own host or listed in
  ``GEOPROC_ALLOWED_ASSET_HOSTS`` (comma list of host names or IPs). A name that does not
  resolve is left to the reader, which cannot reach it either.

GDAL follows HTTP redirects; `GDAL_HTTP_FOLLOWLOCATION`-style control is not exposed per
request, so a public host that redirects to an internal one is the residual risk (noted
in the README's Reliability section).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlparse

from geoproc.errors import UntrustedHrefError

REMOTE_SCHEMES = ("https", "http", "s3")
_DRIVER_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_]+:(?!//)")


@dataclass(frozen=True)
class HrefPolicy:
    """What may be read for the items of one catalog."""

    catalog: str
    """The catalog the items came from (URL, or a local path)."""
    allow_local: bool = False
    """Read local files even though the catalog is remote."""
    allowed_hosts: tuple[str, ...] = ()
    """Hosts allowed even when they are internal addresses (lower case)."""

    @property
    def catalog_is_local(self) -> bool:
        """A folder or file, or an API on loopback (`geoproc stac serve`): this machine's own."""
        if not self.catalog.startswith(("http://", "https://")):
            return True
        host = (urlparse(self.catalog).hostname or "").lower()
        return host in ("localhost", "::1") or host.startswith("127.")

    @property
    def catalog_host(self) -> str | None:
        return None if self.catalog_is_local else (urlparse(self.catalog).hostname or "").lower()


def policy_for(catalog: str | os.PathLike) -> HrefPolicy:
    """The policy for items of `catalog`, with the settings' allowances."""
    from geoproc.settings import get_settings

    settings = get_settings()
    hosts = tuple(
        h.strip().lower() for h in (settings.allowed_asset_hosts or "").split(",") if h.strip()
    )
    return HrefPolicy(os.fspath(catalog), settings.allow_local_assets, hosts)


def check_href(href: str, policy: HrefPolicy) -> str:
    """Return `href` when the policy allows reading it; raise `UntrustedHrefError` otherwise."""
    text = (href or "").strip()
    if not text:
        raise UntrustedHrefError("An asset has an empty href: fix the catalog entry.")
    if text.lower().startswith("/vsi"):
        raise UntrustedHrefError(
            f"Asset href {text!r} is a GDAL virtual path: catalogs must give http(s)://, s3:// "
            "or (local catalogs only) file paths."
        )
    parsed = urlparse(text)
    scheme = parsed.scheme.lower()
    if scheme in ("", "file"):
        return _check_local(text, policy)
    if scheme not in REMOTE_SCHEMES:
        if _DRIVER_PREFIX.match(text):
            raise UntrustedHrefError(
                f"Asset href {text!r} is a GDAL driver path ({scheme.upper()}:...): catalogs "
                "must give http(s)://, s3:// or (local catalogs only) file paths."
            )
        raise UntrustedHrefError(
            f"Asset href {text!r} uses scheme {scheme!r}: only {', '.join(REMOTE_SCHEMES)} are "
            "read (and local files for a local catalog)."
        )
    if scheme == "s3":
        if not parsed.netloc:
            raise UntrustedHrefError(f"Asset href {text!r} has no bucket: fix the catalog entry.")
        return text
    host = (parsed.hostname or "").lower()
    if not host:
        raise UntrustedHrefError(f"Asset href {text!r} has no host: fix the catalog entry.")
    if parsed.username or parsed.password:
        raise UntrustedHrefError(
            f"Asset href of host {host} carries credentials in the URL: refused; give the "
            "credentials through GDAL's settings instead."
        )
    if policy.catalog_is_local or host in policy.allowed_hosts or host == policy.catalog_host:
        return text  # a local catalog is the user's own file: its hosts are trusted
    if _is_internal(host):
        raise UntrustedHrefError(
            f"Asset href {text!r} points to an internal address ({host}): refused. If this "
            f"host is yours, add it to GEOPROC_ALLOWED_ASSET_HOSTS."
        )
    return text


def _check_local(text: str, policy: HrefPolicy) -> str:
    if policy.catalog_is_local or policy.allow_local:
        return text
    raise UntrustedHrefError(
        f"Asset href {text!r} is a local file but the catalog {policy.catalog} is remote: "
        "refused. Set GEOPROC_ALLOW_LOCAL_ASSETS=true if you trust this catalog."
    )


@functools.lru_cache(maxsize=256)
def _is_internal(host: str) -> bool:
    """True when the host is, or resolves to, a non-public address."""
    try:
        addresses = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        if host == "localhost" or host.endswith((".localhost", ".internal", ".local")):
            return True
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return False
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    return any(
        a.is_loopback or a.is_private or a.is_link_local or a.is_reserved or a.is_unspecified
        for a in addresses
    )
