"""Turn the source item ids recorded in product stores into ``derived_from`` hrefs.

Stores record only the ids of the scenes a step was made from (the cube keeps ids, not
URLs, so it stays valid when a catalog moves). Publishing asks the STAC API the run
searched for those ids once (``/search?ids=...``, STAC API Item Search) and links each
output item to the source items' own URLs. Without a catalog, or for ids the catalog no
longer has, the ids are still recorded on the item (``geoproc:source_items``), so no
provenance is lost; entries that already are URLs are linked as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

_BATCH = 100


def resolve_source_hrefs(ids: Iterable[str], *, catalog_url: str | None) -> dict[str, str]:
    """id -> href of each source item; URL entries map to themselves."""
    wanted = sorted({i for i in ids if i})
    hrefs = {i: i for i in wanted if "://" in i}
    missing = [i for i in wanted if i not in hrefs]
    if not missing or not catalog_url:
        return hrefs
    from pystac_client import Client

    try:
        from geoproc.catalog.search import api_io
        from geoproc.settings import get_settings

        client = Client.open(catalog_url, stac_io=api_io(get_settings().catalog_headers()))
        for start in range(0, len(missing), _BATCH):
            batch = missing[start : start + _BATCH]
            for item in client.search(ids=batch, max_items=len(batch) * 4).items():
                href = item.get_self_href()
                if href and item.id in batch:
                    hrefs[item.id] = href
    except Exception as exc:  # provenance links are best effort; ids stay on the items
        log.warning(
            "could not resolve %d source item ids at %s (%s); items keep the ids only",
            len(missing),
            catalog_url,
            exc,
        )
    return hrefs
