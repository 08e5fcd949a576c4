"""Offline STAC validation: the official JSON Schemas, resolved from a local mirror.

Validators such as stac-validator and pystac fetch schemas over the network, which
production sandboxes and CI here cannot reach. This module validates an Item, Collection
or Catalog against the core schema of its `stac_version` and every schema listed in its
`stac_extensions`, resolving each `https://HOST/PATH` from `<schema root>/HOST/PATH`.
The root is `GEOPROC_STAC_SCHEMAS` when set (a folder laid out the same way, for schemas
geoproc does not ship), else `geoproc/schemas/` inside the package: the schemas geoproc's own
items, collections and model cards name, with the `$ref`s they pull in (licences in
`geoproc/schemas/README.md`).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

from geoproc.errors import SchemaError

_CORE = {
    "Feature": "item-spec/json-schema/item.json",
    "Collection": "collection-spec/json-schema/collection.json",
    "Catalog": "catalog-spec/json-schema/catalog.json",
}


class StacValidationError(SchemaError, ValueError):
    """A STAC object does not match one of its schemas; the message lists every problem."""


PACKAGED_SCHEMAS = Path(__file__).resolve().parent / "schemas"
"""The schemas shipped with geoproc, laid out as `HOST/PATH`."""


def schema_root() -> Path:
    """Where `https://HOST/PATH` schemas are resolved: the override, else the packaged copy."""
    env = os.environ.get("GEOPROC_STAC_SCHEMAS")
    return Path(env) if env else PACKAGED_SCHEMAS


def _local_path(url: str) -> Path:
    parsed = urlparse(url)
    return schema_root() / parsed.netloc / parsed.path.lstrip("/")


def _retrieve(uri: str) -> Resource:
    """The schema of a URL from the schema root (looked up each time: the override may change)."""
    path = _local_path(uri)
    if not path.is_file():
        raise NoSuchResource(ref=uri)
    return _load(str(path))


@lru_cache(maxsize=512)
def _load(path: str) -> Resource:
    return Resource.from_contents(json.loads(Path(path).read_text()))


@lru_cache(maxsize=1)
def _registry() -> Registry:
    return Registry(retrieve=_retrieve)


def _schema_urls(obj: dict) -> list[str]:
    kind = obj.get("type")
    if kind not in _CORE:
        raise StacValidationError(f"Not a STAC Item, Collection or Catalog (type={kind!r}).")
    version = obj.get("stac_version", "1.0.0")
    urls = [f"https://schemas.stacspec.org/v{version}/{_CORE[kind]}"]
    urls.extend(obj.get("stac_extensions", []))
    return urls


def validate_stac(obj: dict) -> list[str]:
    """Validate against core + extension schemas; return the schema URLs used.

    Raises `StacValidationError` listing each failing schema and path.
    """
    problems: list[str] = []
    used = _schema_urls(obj)
    for url in used:
        try:
            schema = _retrieve(url).contents
        except NoSuchResource:
            where = os.environ.get("GEOPROC_STAC_SCHEMAS") or "geoproc/schemas"
            problems.append(
                f"{url}: schema not available offline (not under {where}; set "
                "GEOPROC_STAC_SCHEMAS to a folder laid out as HOST/PATH that holds it)"
            )
            continue
        validator_cls = jsonschema.validators.validator_for(
            schema, default=jsonschema.Draft7Validator
        )
        validator = validator_cls(schema, registry=_registry())
        for err in validator.iter_errors(obj):
            where = "/".join(str(p) for p in err.absolute_path) or "(root)"
            problems.append(f"{url}: {where}: {err.message[:300]}")
    if problems:
        raise StacValidationError(f"{obj.get('id', '?')}: " + "; ".join(problems[:20]))
    return used
