"""Replace a whole product store so that readers see the old version or the new, never none.

Why: a full rewrite (canopy's year refreshed, flood past its reference-drift limit, any
product whose options changed) used to delete the store and then write the new one, so an
analyst opening it meanwhile found no store or a half-written one.

- Local disk: the new version is written beside the old, in a hidden sibling folder
  (`staging`), and `commit` exchanges the two folders in one ``renameat2(RENAME_EXCHANGE)``
  call (Linux >= 3.15, glibc >= 2.28: ext4, xfs, btrfs, tmpfs), then deletes the old version.
  A reader that opens the store sees one complete version. Where the exchange is not
  available, two renames leave the path missing for microseconds (logged).
- S3 has no multi-object transaction and no rename: the new version is written in place
  (old objects removed first), as before. A transactional store (icechunk) would close this,
  but its stores are not plain Zarr that GDAL, the COG publisher and analysts' zarr/xarray
  open directly, which is what the store layout promises (`geoproc.zarr_layout`).
  Incremental updates (LST and flood appends) are safe on S3 as well: they switch readers
  with one consolidated-metadata PUT (`geoproc.inference.product_stage`).

Crash safety: a run killed before `commit` leaves only the staging folder, which the next
`staging` call removes; one killed after it leaves the new version without its completion
marker, so the rerun recomputes it (the same bytes).
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
from pathlib import Path

from geoproc import storage

log = logging.getLogger(__name__)

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def staging(location: storage.Location) -> storage.Location:
    """Where to write the new version of the store at `location`, emptied first (a hidden
    sibling on local disk; the store itself on S3, whose old objects are removed)."""
    if location.scheme != "file":
        fs, path = storage.filesystem(location)
        if fs.exists(path):
            fs.rm(path, recursive=True)
        return location
    target = Path(location.path)
    staged = target.with_name(f".{target.name}.next")
    shutil.rmtree(staged, ignore_errors=True)
    return storage.Location("file", str(staged))


def commit(staged: storage.Location, location: storage.Location) -> None:
    """Make the version written at `staged` the store at `location` in one step."""
    if staged == location:
        return
    old, new = Path(location.path), Path(staged.path)
    if not old.exists():
        os.replace(new, old)  # nothing to keep readers from: one atomic rename
        return
    if not _exchange(new, old):
        log.warning("%s: atomic exchange unavailable here, replacing with two renames", old)
        retired = old.with_name(f".{old.name}.old")
        shutil.rmtree(retired, ignore_errors=True)
        os.replace(old, retired)
        os.replace(new, old)
        new = retired
    shutil.rmtree(new, ignore_errors=True)  # the previous version, now at the staging path


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where the call is unavailable."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this filesystem cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(a))
