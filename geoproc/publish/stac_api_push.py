"""Push the published Collections and Items to a STAC API with the Transactions extension.

STAC API - Transaction Extension (https://github.com/stac-api-extensions/transaction):
``POST /collections`` and ``POST /collections/{id}/items`` create; when the object exists
(409 Conflict) it is replaced with ``PUT`` on its own URL, so pushing twice is idempotent.
Hrefs in the static catalog are relative to the output folder; an API serves them from
elsewhere, so they are rewritten against ``asset_base_url`` (the public URL of the output
root, e.g. an https bucket endpoint; the output URL itself by default).
"""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.request
from urllib.parse import urljoin

from geoproc.errors import CatalogError

_TIMEOUT_S = 30


def push_to_stac_api(
    api_url: str,
    collections: list[dict],
    items: list[dict],
    *,
    asset_base_url: str,
    item_base_paths: dict[str, str],
    collection_base_paths: dict[str, str],
) -> dict[str, int]:
    """Create or replace every collection, then every item; return counts.

    ``item_base_paths``/``collection_base_paths`` map an id to the object's folder relative
    to the output root, to resolve its relative hrefs.
    """
    api = api_url.rstrip("/") + "/"
    base = asset_base_url.rstrip("/") + "/"
    counts = {"created": 0, "replaced": 0}
    for coll in collections:
        doc = _absolute(coll, base + collection_base_paths[coll["id"]].strip("/") + "/")
        _create_or_replace(api + "collections", api + f"collections/{coll['id']}", doc, counts)
    for item in items:
        doc = _absolute(item, base + item_base_paths[item["id"]].strip("/") + "/")
        coll_id = item["collection"]
        # an Item naming its collection must link to it (STAC item spec)
        doc["links"].append(
            {
                "rel": "collection",
                "href": api + f"collections/{coll_id}",
                "type": "application/json",
            }
        )
        _create_or_replace(
            api + f"collections/{coll_id}/items",
            api + f"collections/{coll_id}/items/{item['id']}",
            doc,
            counts,
        )
    return counts


def _absolute(obj: dict, folder: str) -> dict:
    """A copy without static-catalog links and with asset hrefs made absolute."""
    doc = copy.deepcopy(obj)
    doc["links"] = [
        link
        for link in doc.get("links", [])
        if link.get("rel") not in ("root", "parent", "self", "item", "child", "collection")
    ]
    for asset in doc.get("assets", {}).values():
        if "://" not in asset["href"]:
            asset["href"] = urljoin(folder, asset["href"])
    return doc


def _create_or_replace(create_url: str, object_url: str, doc: dict, counts: dict) -> None:
    status = _send("POST", create_url, doc)
    if status == 409:
        status = _send("PUT", object_url, doc)
        counts["replaced"] += 1
    else:
        counts["created"] += 1
    if status >= 300:
        raise CatalogError(
            f"The STAC API refused {doc.get('type')} {doc.get('id')!r} (HTTP {status} at "
            f"{object_url}): check --stac-api points at an API with the Transactions extension "
            "and that its credentials allow writes."
        )


def _send(method: str, url: str, doc: dict) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(doc).encode(),
        method=method,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError) as exc:
        raise CatalogError(
            f"The STAC API at {url} does not answer ({exc}): check --stac-api or leave it out."
        ) from exc
