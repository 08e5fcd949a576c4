"""URL -> fsspec filesystem / zarr store for the inference package.

Why a shim: the engine, registry and markers all take URLs (plain paths, file://, s3://)
and defer to ``geoproc.storage`` for endpoints and credentials, so this package has one
import to change if storage moves.
"""

from __future__ import annotations

import fsspec

from geoproc import storage


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path inside it) for a URL or plain path."""
    fs, path = storage.filesystem(url)
    return fs, path.rstrip("/")


def zarr_store(url: str, *, read_only: bool = False):
    """A zarr v3 store object for a URL or path, shared by xarray and zarr calls."""
    return storage.zarr_store(url, read_only=read_only)
