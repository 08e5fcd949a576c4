"""Verify a cube store: which complete time steps can no longer be trusted, and why.

Why: a store marks a step complete once its chunks are written, and a rerun skips complete
steps - so a chunk that a disk, a sync tool or a person damaged later would stay wrong
for ever. Two levels:

* ``quick`` (every rerun): metadata only - each variable's metadata object (``.zarray``;
  ``zarr.json`` in stores of the previous Zarr v3 layout) is there, and every
  chunk object of every complete step exists with a non-zero size (stores record
  ``geoproc:chunks = "all"``: empty chunks are written too, so a missing object is a
  lost one, not an all-fill one). One listing of the store, no chunk is read.
* ``full`` (`geoproc verify URL`, ``--verify`` on runs): additionally decode every chunk
  of every complete step; the chunks are zstd frames with their content checksum
  (`geoproc.zarr_layout`; the Zarr v3 ``crc32c`` codec in old stores), so a truncated or
  bit-flipped chunk fails its checksum instead of decoding to wrong numbers.

Chunk keys and metadata objects come from the store's own format (v2 ``red/3.0.1``, v3
``red/c/3/0/1``), so stores of either layout are verified the same way.

A variable whose metadata object is gone but which the consolidated metadata still lists is
*restorable*: `restore_metadata` writes it back from that copy (the same document zarr
wrote), after which its chunks are verified like the others.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from geoproc import storage, zarr_layout
from geoproc.errors import StoreError

log = logging.getLogger(__name__)

CHUNKS_ALL = "all"
LEVELS = ("quick", "full")


@dataclass
class VerifyReport:
    """What `verify_store` found (part of the run record)."""

    url: str
    level: str
    steps_checked: int = 0
    chunks_checked: int = 0
    damaged: dict[int, list[str]] = field(default_factory=dict)
    """time index -> reasons (``red: chunk c/3/0/1 is 0 bytes``)."""
    metadata_missing: list[str] = field(default_factory=list)
    """Variables whose metadata object (``.zarray`` / ``zarr.json``) is missing."""

    def add(self, i: int, reason: str) -> None:
        self.damaged.setdefault(int(i), []).append(reason)

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.metadata_missing

    def to_record(self) -> dict:
        return {
            "url": self.url,
            "level": self.level,
            "steps_checked": self.steps_checked,
            "chunks_checked": self.chunks_checked,
            "damaged_steps": {str(k): v for k, v in sorted(self.damaged.items())},
            "metadata_missing": self.metadata_missing,
        }


def check_level(level: str) -> str:
    if level not in LEVELS:
        from geoproc.errors import UsageError

        raise UsageError(f"--verify {level!r}: use one of {', '.join(LEVELS)}.")
    return level


def missing_metadata(location: storage.Location, variables: Sequence[str]) -> list[str]:
    """Variables whose array metadata object is missing from the store."""
    fs, path = storage.filesystem(location)
    key = zarr_layout.metadata_key(zarr_layout.store_format(location) or 2, array=True)
    return [v for v in variables if not fs.exists(f"{path}/{v}/{key}")]


def consolidated_arrays(location: storage.Location) -> dict[str, dict]:
    """Array name -> metadata document (with ``attributes``) from the consolidated copy.

    v2: ``.zmetadata`` (``name/.zarray`` + ``name/.zattrs``); v3: the root ``zarr.json``.
    """
    fs, path = storage.filesystem(location)
    fmt = zarr_layout.store_format(location)
    try:
        if fmt == 3:
            root = json.loads(fs.cat_file(f"{path}/zarr.json"))
            listed = (root.get("consolidated_metadata") or {}).get("metadata") or {}
            return {k: dict(m) for k, m in listed.items() if m.get("node_type") == "array"}
        listed = json.loads(fs.cat_file(f"{path}/.zmetadata")).get("metadata") or {}
    except (FileNotFoundError, ValueError):
        return {}
    return {
        k[: -len("/.zarray")]: {**m, "attributes": listed.get(k[: -len(".zarray")] + ".zattrs", {})}
        for k, m in listed.items()
        if k.endswith("/.zarray")
    }


def restore_metadata(location: storage.Location, variables: Sequence[str]) -> list[str]:
    """Write back missing array metadata from the root's consolidated copy; return restored.

    Raises `StoreError` naming the variable when the consolidated copy lacks it too.
    """
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.metadata.v2 import ArrayV2Metadata
    from zarr.core.metadata.v3 import ArrayV3Metadata

    fs, path = storage.filesystem(location)
    fmt = zarr_layout.store_format(location) or zarr_layout.ZARR_FORMAT
    key = zarr_layout.metadata_key(fmt, array=True)
    consolidated = consolidated_arrays(location)
    restored = []
    for name in variables:
        doc = consolidated.get(name)
        if not doc:
            raise StoreError(
                f"{location.url} is damaged: variable {name!r} has lost its metadata "
                f"({name}/{key}) and the consolidated metadata has no copy. Delete the "
                "store (or use a new --out) and build again."
            )
        meta_cls = ArrayV3Metadata if fmt == 3 else ArrayV2Metadata
        files = meta_cls.from_dict(dict(doc)).to_buffer_dict(default_buffer_prototype())
        for file_name, buffer in sorted(files.items()):
            if file_name == key or not fs.exists(f"{path}/{name}/{file_name}"):
                storage.write_bytes_atomic(location.join(name, file_name), buffer.to_bytes())
        log.warning("restored %s/%s of %s from the consolidated metadata", name, key,
                    location.url)  # fmt: skip
        restored.append(name)
    return restored


def verify_store(
    location: storage.Location,
    *,
    complete: np.ndarray,
    variables: Sequence[str],
    level: str = "quick",
) -> VerifyReport:
    """Check the chunks of the complete steps of the image variables (see module doc)."""
    import zarr

    report = VerifyReport(location.url, check_level(level))
    steps = [int(i) for i in np.flatnonzero(complete)]
    report.steps_checked = len(steps)
    report.metadata_missing = missing_metadata(location, variables)
    if not steps:
        return report
    store = storage.zarr_store(location, read_only=True)
    group = zarr.open_group(store, mode="r", use_consolidated=False)
    meta_key = zarr_layout.metadata_key(group.metadata.zarr_format, array=True)
    all_chunks = group.attrs.get("geoproc:chunks") == CHUNKS_ALL
    sizes = _object_sizes(location)
    for name in variables:
        if name in report.metadata_missing:
            for i in steps:
                report.add(i, f"{name}: metadata {name}/{meta_key} missing")
            continue
        arr = group[name]
        ny = math.ceil(arr.shape[1] / arr.chunks[1])
        nx = math.ceil(arr.shape[2] / arr.chunks[2])
        for i in steps:
            for cy in range(ny):
                for cx in range(nx):
                    chunk = arr.metadata.encode_chunk_key((i, cy, cx))
                    size = sizes.get(f"{name}/{chunk}")
                    report.chunks_checked += 1
                    if size is None:
                        if all_chunks:
                            report.add(i, f"{name}: chunk {chunk} missing")
                    elif size == 0:
                        report.add(i, f"{name}: chunk {chunk} is 0 bytes")
            if level == "full" and i not in report.damaged:
                try:
                    arr[i]
                except Exception as exc:  # noqa: BLE001 - any decode failure means damage
                    report.add(i, f"{name}: step {i} does not decode ({type(exc).__name__}: "
                                  f"{str(exc)[:120]})")  # fmt: skip
    return report


def _object_sizes(location: storage.Location) -> dict[str, int]:
    """Size of every object under the store, by key relative to it (one listing)."""
    fs, path = storage.filesystem(location)
    root = path.rstrip("/") + "/"
    found = fs.find(path, detail=True)
    return {
        p[len(root) :] if p.startswith(root) else p: int(info.get("size") or 0)
        for p, info in found.items()
    }


def verify_cube(location: storage.Location, *, level: str = "full") -> VerifyReport:
    """Verify a cube store on its own (no catalog): the variables its consolidated
    metadata lists, the steps its ``time_complete`` marks complete."""
    import zarr

    if not zarr_layout.is_store(location):
        raise StoreError(
            f"{location.url} is not a geoproc store (no .zgroup or zarr.json): check the URL."
        )
    listed = consolidated_arrays(location)
    variables = sorted(k for k, m in listed.items() if len(m.get("shape", ())) == 3)
    report = VerifyReport(location.url, check_level(level))
    try:
        group = zarr.open_group(
            storage.zarr_store(location, read_only=True), mode="r", use_consolidated=False
        )
        complete = np.asarray(group["time_complete"][:], bool)
    except Exception as exc:  # noqa: BLE001 - unreadable markers: nothing can be trusted
        report.metadata_missing = ["time_complete"]
        report.add(-1, f"completion markers unreadable ({type(exc).__name__}): every step "
                       "will be rebuilt")  # fmt: skip
        return report
    return verify_store(location, complete=complete, variables=variables, level=level)


def cube_stores(url: str) -> list[storage.Location]:
    """The cube stores a URL names: itself when it is one, else ``{url}/cubes/*.zarr``."""
    location = storage.parse_url(url)
    if zarr_layout.is_store(location):
        return [location]
    fs, path = storage.filesystem(location)
    prefix = path.rstrip("/") + "/"
    found = sorted(p for p in fs.glob(f"{path}/cubes/*.zarr") if p.startswith(prefix))
    stores = [location.join(p[len(prefix) :]) for p in found]
    return [s for s in stores if zarr_layout.is_store(s)]
