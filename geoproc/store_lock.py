"""One writer per store: an exclusive lock object next to it, local disk or S3, owner-checked.

Why a lock object and not a lease service: geoproc writes to plain filesystems and object
stores with no coordinator. The lock must be *taken atomically* - two builds that start
at the same instant must not both win - and *released only by its owner*, so a build that
finishes late never deletes the lock a newer build holds.

* Local disk: ``open(O_CREAT | O_EXCL)`` (POSIX exclusive create).
* S3: a conditional PUT with ``If-None-Match: *`` (S3 conditional writes, GA August
  2024; also MinIO, Ceph RGW and moto): the store itself refuses the second writer with
  412 Precondition Failed (or 409 ConditionalRequestConflict while the first is in flight).
* Release and take-over: the body holds host, pid and a random token; release deletes the
  object only while it still holds our token, and on S3 the delete is conditional on the
  ETag read (``If-Match``), so a lock replaced in between survives. A lock left by a dead
  process on this host is taken over the same way.

`hold(location, what=...)` is the reusable entry point: cube stores use it through
`geoproc.cube.store.store_lock`, product stores can wrap their writes in it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from geoproc import storage
from geoproc.errors import StoreLockedError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock (the lock object's JSON body)."""

    host: str | None
    pid: int | None
    token: str | None

    @classmethod
    def parse(cls, body: bytes) -> LockHolder:
        try:
            d = json.loads(body)
        except ValueError:
            return cls(None, None, None)
        if not isinstance(d, dict):
            return cls(None, None, None)
        pid = d.get("pid")
        return cls(d.get("host"), pid if isinstance(pid, int) else None, d.get("token"))


def lock_location(location: storage.Location) -> storage.Location:
    """The lock object of a store: ``{store}.lock`` beside it."""
    return storage.Location(location.scheme, location.path.rstrip("/") + ".lock")


@contextlib.contextmanager
def hold(location: storage.Location, *, what: str = "build") -> Iterator[str]:
    """Hold the store's lock for the block; yield the owner token.

    Refuses (`StoreLockedError`) when a live writer holds it; takes over a lock left by a
    dead process on this host. `what` names the writer kind in messages ("build",
    "product run").
    """
    lock = lock_location(location)
    token = uuid.uuid4().hex
    body = json.dumps(
        {"host": socket.gethostname(), "pid": os.getpid(), "token": token,
         "acquired": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    ).encode()  # fmt: skip
    acquire(lock, body, what=what)
    try:
        yield token
    finally:
        release(lock, token)


def acquire(lock: storage.Location, body: bytes, *, what: str = "build") -> None:
    """Create the lock object exclusively; take over a dead local holder's lock once."""
    for _ in range(2):
        if _create_exclusive(lock, body):
            return
        holder, etag = _read(lock)
        if holder is None:  # released between our create and our read: try again
            continue
        if holder.host == socket.gethostname() and holder.pid and not _alive(holder.pid):
            log.warning("taking over the lock %s left by dead process %s", lock.url, holder.pid)
            _delete_if_unchanged(lock, holder, etag)
            continue
        raise StoreLockedError(
            f"Another {what} (host {holder.host}, pid {holder.pid}) is writing this store: wait "
            f"for it to finish, or if none is running delete the lock {lock.url} and run again."
        )
    raise StoreLockedError(
        f"Could not take the lock {lock.url} (another writer took it first): wait for that "
        "writer to finish, or if none is running delete the lock and run again."
    )


def release(lock: storage.Location, token: str) -> bool:
    """Delete the lock only if it still holds `token`; True when it did."""
    holder, etag = _read(lock)
    if holder is None:
        return False
    if holder.token != token:
        log.warning("lock %s now belongs to another writer (pid %s): left in place", lock.url,
                    holder.pid)  # fmt: skip
        return False
    return _delete_if_unchanged(lock, holder, etag)


def _create_exclusive(lock: storage.Location, body: bytes) -> bool:
    if lock.scheme == "file":
        os.makedirs(os.path.dirname(lock.path), exist_ok=True)
        try:
            fd = os.open(lock.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        return True
    fs, path = storage.filesystem(lock)
    try:
        # s3fs "create" mode = put_object(IfNoneMatch="*"): the store decides atomically.
        fs.pipe_file(path, body, mode="create")
    except FileExistsError:
        return False
    except OSError as exc:
        if _is_conflict(exc):
            return False
        raise
    return True


def _is_conflict(exc: OSError) -> bool:
    """412 / 409 from a conditional write: someone else's write won."""
    text = str(exc)
    return exc.errno in (errno.EINVAL, errno.EBUSY) and (
        "Precondition" in text or "ConditionalRequestConflict" in text or "412" in text
        or "409" in text
    )  # fmt: skip


def _read(lock: storage.Location) -> tuple[LockHolder | None, str | None]:
    """(holder, ETag) of the lock object; (None, None) when there is none."""
    if lock.scheme == "file":
        try:
            with open(lock.path, "rb") as f:
                return LockHolder.parse(f.read()), None
        except FileNotFoundError:
            return None, None
    fs, path = storage.filesystem(lock)
    bucket, key, _ = fs.split_path(path)

    async def _get() -> tuple[bytes, str]:
        got = await fs._call_s3("get_object", Bucket=bucket, Key=key)
        async with got["Body"] as stream:
            return await stream.read(), got.get("ETag")

    from fsspec.asyn import sync

    try:
        data, etag = sync(fs.loop, _get)
    except FileNotFoundError:
        return None, None
    return LockHolder.parse(data), etag


def _delete_if_unchanged(lock: storage.Location, holder: LockHolder, etag: str | None) -> bool:
    """Delete the lock object if it is still the one read (token on disk, ETag on S3)."""
    if lock.scheme == "file":
        again, _ = _read(lock)
        if again is None or again.token != holder.token or again.pid != holder.pid:
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock.path)
        return True
    fs, path = storage.filesystem(lock)
    bucket, key, _ = fs.split_path(path)
    try:
        fs.call_s3("delete_object", Bucket=bucket, Key=key, **({"IfMatch": etag} if etag else {}))
    except FileNotFoundError:
        return False
    except OSError as exc:
        if _is_conflict(exc):
            return False
        raise
    finally:
        fs.invalidate_cache(path)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
