"""Credentials for asset reads: Planetary Computer SAS signing and NASA Earthdata login.

Why here and not at search time: a SAS token lives about an hour and a backfill runs for
days, so hrefs are signed when they are read (the `planetary-computer` SDK caches each
token and fetches a new one when less than a minute is left), and a 403 drops the cached
token and signs again once. Earthdata: LP DAAC answers a request without credentials with
a redirect to the Earthdata login host; GDAL passes a bearer token (``EARTHDATA_TOKEN``)
as an ``Authorization`` header, or logs in with ``~/.netrc`` and keeps the session cookie
in a cookie file. Both are read from the environment of the process that reads (the flow
runner or each Dask worker), never put into task graphs.

A provider answers four questions for an href: does it apply, the href to open, the GDAL
options to open it with, and what the user must set when it is refused.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlparse

EARTHDATA_HOSTS = (
    "data.lpdaac.earthdatacloud.nasa.gov",
    "lpdaac.earthdata.nasa.gov",
    "e4ftl01.cr.usgs.gov",
)
"""LP DAAC hosts of HLS granules; more with GEOPROC_EARTHDATA_HOSTS (comma list)."""


class CredentialProvider(Protocol):
    """Credentials for the hrefs of one provider."""

    def applies(self, href: str) -> bool: ...

    def sign(self, href: str) -> str: ...

    def refresh(self, href: str) -> None: ...

    def gdal_options(self, href: str) -> dict[str, str]: ...

    @property
    def hint(self) -> str: ...


def _host(href: str) -> str:
    parsed = urlparse(href)
    return parsed.netloc.rsplit("@", 1)[-1].lower()


@dataclass(frozen=True)
class PlanetaryComputerSigner:
    """SAS-token signing of Azure Blob hrefs with the `planetary-computer` SDK."""

    accounts: dict[str, str] = field(default_factory=dict)
    """Extra ``host[:port] -> storage account`` (tests point it at a local COG server)."""

    def _account_container(self, href: str) -> tuple[str, str] | None:
        parsed = urlparse(href)
        host = _host(href)
        container = parsed.path.lstrip("/").split("/", 1)[0]
        if host in self.accounts:
            return self.accounts[host], container
        if host.endswith(".blob.core.windows.net"):
            return host.split(".", 1)[0], container
        return None

    def applies(self, href: str) -> bool:
        return self._account_container(href) is not None

    def sign(self, href: str) -> str:
        from planetary_computer import sas

        account, container = self._account_container(href)
        token = sas.get_token(account, container, retry_total=3)
        base = href.split("?", 1)[0]
        return f"{base}?{token.token}"

    def refresh(self, href: str) -> None:
        from planetary_computer import sas
        from planetary_computer.settings import Settings

        account, container = self._account_container(href)
        sas.TOKEN_CACHE.pop(f"{Settings.get().sas_url}/{account}/{container}", None)

    def gdal_options(self, href: str) -> dict[str, str]:
        return {}

    @property
    def hint(self) -> str:
        return (
            "PC_SDK_SUBSCRIPTION_KEY (a Planetary Computer API key; PC_SDK_SAS_URL for another "
            "token endpoint)"
        )


@dataclass(frozen=True)
class EarthdataLogin:
    """NASA Earthdata login handed to GDAL: bearer token, else ~/.netrc with a cookie file."""

    hosts: tuple[str, ...] = EARTHDATA_HOSTS

    def applies(self, href: str) -> bool:
        extra = tuple(
            h.strip().lower()
            for h in os.environ.get("GEOPROC_EARTHDATA_HOSTS", "").split(",")
            if h.strip()
        )
        return _host(href) in self.hosts + extra

    def sign(self, href: str) -> str:
        return href

    def refresh(self, href: str) -> None:
        return None  # a token or netrc entry is the user's to renew

    def gdal_options(self, href: str) -> dict[str, str]:
        token = os.environ.get("EARTHDATA_TOKEN", "").strip()
        if token:
            return {"GDAL_HTTP_HEADERS": f"Authorization: Bearer {token}"}
        cookies = os.path.join(tempfile.gettempdir(), f"geoproc-earthdata-cookies-{os.getuid()}")
        options = {"GDAL_HTTP_COOKIEFILE": cookies, "GDAL_HTTP_COOKIEJAR": cookies}
        options["GDAL_HTTP_NETRC"] = "YES"
        if os.environ.get("NETRC"):
            options["GDAL_HTTP_NETRC_FILE"] = os.environ["NETRC"]
        return options

    @property
    def hint(self) -> str:
        return (
            "EARTHDATA_TOKEN (a bearer token from urs.earthdata.nasa.gov) or a "
            "'machine urs.earthdata.nasa.gov login ... password ...' line in ~/.netrc (or NETRC)"
        )


def default_providers() -> tuple[CredentialProvider, ...]:
    return (PlanetaryComputerSigner(), EarthdataLogin())


def provider_for(href: str, providers) -> CredentialProvider | None:
    return next((p for p in providers if p.applies(href)), None)


def worker_environment() -> dict[str, str]:
    """Credential variables to copy onto Dask workers (`geoproc.dask_exec.share_credentials`)."""
    names = (
        "EARTHDATA_TOKEN",
        "NETRC",
        "GEOPROC_EARTHDATA_HOSTS",
        "PC_SDK_SUBSCRIPTION_KEY",
        "PC_SDK_SAS_URL",
    )
    return {n: os.environ[n] for n in names if os.environ.get(n)}
