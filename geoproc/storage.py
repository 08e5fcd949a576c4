"""One place that turns a URL into something to read and write: local paths, file://, s3://.

Everything else in geoproc takes URLs and asks this module for a filesystem or a Zarr
store, so supporting another object store means changing this file only. S3 endpoint and
credentials come from the environment (see `geoproc.settings`); secrets never appear in
messages.
"""

from __future__ import annotations

import mimetypes
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import fsspec

from geoproc.errors import CredentialsError, StorageURLError
from geoproc.settings import Settings, get_settings

SUPPORTED_SCHEMES = ("file", "s3")
S3_MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Location:
    """A parsed storage URL: scheme plus the path inside that filesystem."""

    scheme: str
    """`file` or `s3`."""
    path: str
    """Absolute local path, or `bucket/prefix` for s3."""

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.path}" if self.scheme != "file" else self.path

    def join(self, *parts: str) -> Location:
        """A key under this location; parts that would leave it are refused (see `safe_key`)."""
        tail = "/".join(safe_key(p) for p in parts if p)
        return Location(self.scheme, f"{self.path.rstrip('/')}/{tail}" if tail else self.path)


_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_key(part: str) -> str:
    """A relative key (``a/b/c``) that stays under its prefix, or `StorageURLError`.

    Why: keys are built from tile ids, dates and names that may come from a catalog or a
    request; ``..``, absolute paths, backslashes and control characters could write
    outside the output prefix or make keys that differ between filesystems.
    """
    text = str(part)
    segments = [s for s in text.strip("/").split("/") if s]
    bad = [s for s in segments if s in (".", "..") or _UNSAFE_CHARS.search(s)]
    if bad or (segments and ":" in segments[0] and "://" in text):
        raise StorageURLError(
            f"Output key {text!r} would leave the output prefix or holds unsafe characters "
            f"({bad[0] if bad else text!r}): use names without '..', '\\' or control characters."
        )
    return "/".join(segments)


_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


def parse_url(url: str | os.PathLike, *, argument: str = "--out") -> Location:
    """Parse a local path, file:// or s3:// URL; anything else is a usage error naming `argument`.

    An s3:// URL is checked in full before anything is written: the bucket name against
    the S3 naming rules (3-63 lowercase letters, digits, '.', '-'; no IP address), and the
    key prefix for `..`, `.` and empty segments, which S3 would store literally as keys
    (``s3://b/../../etc`` would write objects named ``../../etc/...``).
    """
    text = os.fspath(url).strip()
    if not text:
        raise StorageURLError(
            f"{argument} is empty: pass a local path, file:///abs/path or s3://bucket/prefix."
        )
    parsed = urlparse(text)
    scheme = parsed.scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        local = parsed.path if scheme == "file" else text
        if scheme == "file" and parsed.netloc not in ("", "localhost"):
            raise StorageURLError(
                f"{argument} {text!r} names a host; use file:///absolute/path (three slashes) or a plain path."
            )
        return Location("file", str(Path(local).expanduser().resolve()))
    if scheme == "s3":
        return Location("s3", _checked_s3_path(text, argument))
    raise StorageURLError(
        f"{argument}: unsupported URL scheme {parsed.scheme!r} in {text!r}: use a local path, "
        "file:// or s3://."
    )


def _checked_s3_path(text: str, argument: str) -> str:
    """`bucket/prefix` of an s3:// URL, or a `StorageURLError` naming what to change."""
    rest = text.split("://", 1)[1]
    if any(c in rest for c in "?#") or _UNSAFE_CHARS.search(rest):
        raise StorageURLError(
            f"{argument} {text!r} holds '?', '#', a backslash or control characters: "
            "use s3://BUCKET/PREFIX with plain key names."
        )
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise StorageURLError(f"{argument} {text!r} has no bucket; use s3://BUCKET/PREFIX.")
    if not _S3_BUCKET.match(bucket) or ".." in bucket or _IPV4.match(bucket):
        raise StorageURLError(
            f"{argument} {text!r}: {bucket!r} is not a valid S3 bucket name (3-63 characters: "
            "lowercase letters, digits, '.' and '-', starting and ending with a letter or "
            "digit, not an IP address); pick a valid bucket."
        )
    segments = prefix[:-1].split("/") if prefix.endswith("/") else prefix.split("/")
    if prefix and any(s in ("", ".", "..") for s in segments):
        bad = next(s for s in segments if s in ("", ".", ".."))
        what = "an empty segment ('//')" if bad == "" else f"a {bad!r} segment"
        raise StorageURLError(
            f"{argument} {text!r} has {what} in its key prefix, which S3 would store literally: "
            "write the prefix without '..', '.' or '//', e.g. s3://bucket/runs/2024."
        )
    return f"{bucket}/{prefix}".rstrip("/")


def storage_options(location: Location, *, settings: Settings | None = None) -> dict[str, Any]:
    """fsspec options for a location (empty for local files)."""
    if location.scheme != "s3":
        return {}
    settings = settings or get_settings()
    if settings.s3_anonymous:
        opts: dict[str, Any] = {"anon": True}
    else:
        key, secret = settings.resolved_s3_credentials()
        if bool(key) != bool(secret):
            missing = "secret access key" if key else "access key id"
            raise CredentialsError(
                f"The S3 {missing} is missing: set GEOPROC_S3_ACCESS_KEY_ID and "
                "GEOPROC_S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)."
            )
        if not key:
            has_profile = os.environ.get("AWS_PROFILE") or os.path.exists(
                os.path.expanduser("~/.aws/credentials")
            )
            if not has_profile:
                raise CredentialsError(
                    f"No S3 credentials for s3://{location.path.split('/')[0]}: set "
                    "GEOPROC_S3_ACCESS_KEY_ID and GEOPROC_S3_SECRET_ACCESS_KEY (or the AWS_* "
                    "variables), or GEOPROC_S3_ANONYMOUS=true for a public bucket."
                )
            opts = {}
        else:
            opts = {"key": key, "secret": secret}
    client_kwargs: dict[str, Any] = {"region_name": settings.s3_region}
    endpoint = settings.resolved_s3_endpoint()
    if endpoint:
        client_kwargs["endpoint_url"] = endpoint
    opts["client_kwargs"] = client_kwargs
    # Retries for throttling, 5xx and dropped connections are botocore's job. Its "legacy"
    # mode is the one that retries a bare HTTP 429 (botocore/data/_retry.json
    # "too_many_requests"), which S3-compatible stores send where AWS sends 503 SlowDown;
    # "standard"/"adaptive" only retry 429 when the body names a throttling error code,
    # and a HEAD answer has no body (found with tests/helpers/faults.py).
    opts["config_kwargs"] = {
        "retries": {"max_attempts": S3_MAX_ATTEMPTS, "mode": "legacy"},
        "connect_timeout": 10,
        "read_timeout": 60,
    }
    return opts


def filesystem(url: str | os.PathLike | Location) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path inside it) for a URL."""
    location = url if isinstance(url, Location) else parse_url(url)
    fs = fsspec.filesystem(location.scheme, **storage_options(location))
    return fs, location.path


def zarr_store(url: str | os.PathLike | Location, *, read_only: bool = False):
    """A zarr v3 store for a URL (LocalStore for files, FsspecStore for s3)."""
    import zarr.storage

    location = url if isinstance(url, Location) else parse_url(url)
    if location.scheme == "file":
        return zarr.storage.LocalStore(location.path, read_only=read_only)
    fs = fsspec.filesystem("s3", asynchronous=True, **storage_options(location))
    return zarr.storage.FsspecStore(fs, path=location.path, read_only=read_only)


def exists(url: str | os.PathLike | Location) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


def write_bytes_atomic(url: str | os.PathLike | Location, data: bytes) -> None:
    """Write a small object so readers see the old or the new content, never a torn one.

    Local files go through a temporary name and `os.replace`; S3 PUTs are atomic per object.
    """
    location = url if isinstance(url, Location) else parse_url(url)
    if location.scheme == "file":
        target = Path(location.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return
    fs, path = filesystem(location)
    if location.scheme == "s3":
        # browsers refuse a stylesheet or a page served as binary/octet-stream (the default
        # of a bare PUT): published viewers and reports must carry their content type
        content_type = mimetypes.guess_type(path)[0]
        if content_type:
            fs.pipe_file(path, data, ContentType=content_type)
            return
    fs.pipe_file(path, data)


def read_bytes(url: str | os.PathLike | Location) -> bytes:
    fs, path = filesystem(url)
    return fs.cat_file(path)


def remove_partial_writes(url: str | os.PathLike | Location) -> int:
    """Delete temporary files a killed writer left in a local Zarr store; return how many.

    zarr's LocalStore writes each object to ``NAME.<uuid>.partial`` and renames it, so a
    SIGKILL between the two leaves an orphan that no reader sees but that makes the folder
    differ from a clean run. Call it only while holding the store's write lock. Object
    stores need nothing: an S3 PUT is atomic and leaves no temporary object.
    """
    location = url if isinstance(url, Location) else parse_url(url)
    if location.scheme != "file" or not os.path.isdir(location.path):
        return 0
    removed = 0
    for orphan in Path(location.path).rglob("*.partial"):
        orphan.unlink(missing_ok=True)
        removed += 1
    return removed
