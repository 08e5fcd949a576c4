"""What the last publish made of each (product, tile, date), so a rerun re-encodes only what changed.

Why a state file next to the outputs rather than comparing output bytes: comparing bytes
(`atomic.ObjectWriter`) keeps a no-op rerun from *writing*, but it still has to *encode*
every COG, thumbnail and STAC item to have bytes to compare, which is most of the cost of
publishing. The state records, per date of a tile, a fingerprint of everything those
outputs depend on (the stored values, their attributes, grid, style, sources, software and
GDAL versions) and the checksum and size of each file made from them. A rerun whose
fingerprint matches, and whose files are all still there with those sizes, reuses them
without reading a pixel twice.

Two levels: a product store written by `geoproc.product_runner` carries the fingerprint
of its inputs (``geoproc:input_fingerprint``); when that, the store's metadata and its
list of steps are unchanged, no value is read at all (the no-op rerun). Otherwise each
date's values are hashed and only dates whose hash changed are published again (a run
that adds a date, or a product whose algorithm changed a few dates).

The state is written after the product's Items and Collection, so a publish interrupted
before it leaves the previous state, and the rerun re-encodes (and by byte comparison
writes) only what is missing or different. Layout: ``publish-state/{product}.json``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import rasterio

from geoproc import __version__, storage

STATE_FORMAT = 3
"""Bump whenever the bytes publishing makes from the same inputs change (COG options,
item layout, thumbnail rendering): every date is then published again once."""


def state_relpath(product: str) -> str:
    return f"publish-state/{product}.json"


@dataclass
class StepRecord:
    """The outputs of one (tile, date) and the fingerprint of what they were made from."""

    inputs: str
    item: dict
    """Id, bbox and datetime properties of the Item (what its Collection needs)."""
    files: dict[str, list]
    """Output-root-relative path -> [sha256 hex, size] of every file of the date."""
    primary: str
    """Relative path of the COG the web tiles are rendered from."""

    def to_json(self) -> dict:
        return {
            "inputs": self.inputs,
            "item": self.item,
            "files": self.files,
            "primary": self.primary,
        }


@dataclass
class ProductState:
    """Everything the last publish of one product made, keyed ``{tile}/{label}``."""

    run_id: str | None = None
    """The last run that changed any of the product's outputs (the Collection's run)."""
    stores: dict[str, str] = field(default_factory=dict)
    """Tile -> store key (see `store_key`) when the whole store was unchanged-checkable."""
    steps: dict[str, StepRecord] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        payload = {
            "format": STATE_FORMAT,
            "run_id": self.run_id,
            "stores": dict(sorted(self.stores.items())),
            "steps": {k: self.steps[k].to_json() for k in sorted(self.steps)},
        }
        return (json.dumps(payload, sort_keys=True, indent=1) + "\n").encode()


def read_state(writer, product: str) -> ProductState:
    """The state the last publish left, or an empty one (missing, unreadable, older format)."""
    fs, path = storage.filesystem(writer.location(state_relpath(product)))
    try:
        raw = json.loads(fs.cat_file(path))
    except (FileNotFoundError, ValueError, OSError):
        return ProductState()
    if not isinstance(raw, dict) or raw.get("format") != STATE_FORMAT:
        return ProductState()
    steps = {
        key: StepRecord(
            inputs=rec["inputs"], item=rec["item"], files=rec["files"], primary=rec["primary"]
        )
        for key, rec in raw.get("steps", {}).items()
    }
    return ProductState(run_id=raw.get("run_id"), stores=raw.get("stores", {}), steps=steps)


def listing(writer, reldir: str) -> dict[str, int]:
    """Relative path -> size of every file under ``reldir`` (one listing, not one stat each)."""
    fs, base = storage.filesystem(writer.location(reldir))
    root = writer.root.path.rstrip("/") + "/"
    try:
        found = fs.find(base, detail=True)
    except FileNotFoundError:
        return {}
    return {
        (p[len(root) :] if p.startswith(root) else p): int(info.get("size", -1))
        for p, info in found.items()
        if info.get("type") != "directory"
    }


def files_present(record: StepRecord, sizes: dict[str, int]) -> bool:
    """True when every file of the record exists with the size it was written with."""
    return all(sizes.get(rel) == size for rel, (_sha, size) in record.files.items())


def _json_default(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _digest(payload: object) -> hashlib._Hash:
    text = json.dumps(payload, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode())


def environment() -> dict:
    """Software whose upgrade may change published bytes from the same inputs."""
    return {"format": STATE_FORMAT, "geoproc": __version__, "gdal": rasterio.__gdal_version__}


def step_fingerprint(
    *,
    context: dict,
    variables: list[tuple[str, dict, np.ndarray]],
) -> str:
    """Hash of one date's outputs' inputs: ``context`` (grid, style, sources...) + values."""
    digest = _digest({"env": environment(), **context})
    for name, attrs, values in variables:
        digest.update(_digest({"name": name, "attrs": attrs, "dtype": values.dtype.str}).digest())
        digest.update(repr(values.shape).encode())
        digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def store_key(dataset, steps: list[tuple[str, int | None]], context: dict) -> str | None:
    """Key of a whole product store whose producer recorded its input fingerprint; else None.

    Equal keys mean equal values: the product runner writes a store only from inputs with
    that fingerprint (product version, software version, options, source items, times).
    """
    fingerprint = dataset.attrs.get("geoproc:input_fingerprint")
    if not fingerprint:
        return None
    variables = {
        name: {"attrs": dict(var.attrs), "dtype": var.dtype.str, "shape": list(var.shape)}
        for name, var in dataset.data_vars.items()
    }
    payload = {
        "env": environment(),
        "fingerprint": fingerprint,
        "attrs": dict(dataset.attrs),
        "variables": variables,
        "steps": steps,
        **context,
    }
    return _digest(payload).hexdigest()
