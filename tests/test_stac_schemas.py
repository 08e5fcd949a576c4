"""The JSON Schemas geoproc's outputs name ship inside the package; validation is offline."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

import geoproc
from geoproc.errors import SchemaError
from geoproc.stac_schemas import PACKAGED_SCHEMAS, validate_stac

PACKAGE = Path(geoproc.__file__).parent
SCHEMA_URL = re.compile(
    r"https://(?:stac-extensions\.github\.io|schemas\.stacspec\.org)/[\w./-]+\.json"
)


def _local(url: str) -> Path:
    parsed = urlparse(url)
    return PACKAGED_SCHEMAS / parsed.netloc / parsed.path.lstrip("/")


def _named_in_code() -> set[str]:
    urls = set()
    for path in [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.json")]:
        if PACKAGED_SCHEMAS in path.parents:
            continue
        urls |= set(SCHEMA_URL.findall(path.read_text(errors="replace")))
    return urls


def test_every_schema_url_geoproc_writes_is_shipped():
    urls = _named_in_code()
    assert "https://stac-extensions.github.io/mlm/v1.5.2/schema.json" in urls
    assert len(urls) >= 15
    missing = sorted(u for u in urls if not _local(u).is_file())
    assert missing == [], "copy these from the official URLs into geoproc/schemas/"
    for version in ("1.0.0", "1.1.0"):
        for kind in ("item", "collection", "catalog"):
            url = f"https://schemas.stacspec.org/v{version}/{kind}-spec/json-schema/{kind}.json"
            assert _local(url).is_file(), url


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_ref_inside_the_shipped_schemas_resolves_locally():
    files = sorted(PACKAGED_SCHEMAS.rglob("*.json"))
    assert len(files) >= 40
    for path in files:
        url = "https://" + path.relative_to(PACKAGED_SCHEMAS).as_posix()
        for ref in _refs(json.loads(path.read_text())):
            target = urljoin(url, ref).split("#", 1)[0]
            if not target or target.startswith("http://json-schema.org/"):
                continue  # same document, or the draft-07 metaschema jsonschema bundles
            assert _local(target).is_file(), (path, ref)


def test_override_folder_is_used_and_a_missing_schema_is_a_schema_error(tmp_path, monkeypatch):
    card = json.loads((PACKAGE / "inference" / "cards" / "tiny-fcn-1.0.0.json").read_text())
    assert "mlm/v1.5.2" in " ".join(validate_stac(card))  # packaged copy, no network
    monkeypatch.setenv("GEOPROC_STAC_SCHEMAS", str(tmp_path))
    with pytest.raises(SchemaError) as err:
        validate_stac(card)
    assert str(tmp_path) in str(err.value) and err.value.exit_code == 4
