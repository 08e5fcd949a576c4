"""Idempotent object writes under one output root, for file:// and s3:// alike.

Why compare before writing: a rerun must leave every object that did not change untouched
(same bytes, no new upload, no new mtime), and only objects whose content changed are
replaced. Each object write is atomic on its own (`geoproc.storage.write_bytes_atomic`:
rename locally, single PUT on S3); the order of writes (assets before the STAC item that
names them) is what makes a whole item atomic, and that order is the publisher's job.
`prune` removes objects a previous run left that the current run no longer produces, so
reruns leave no orphans.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from geoproc import storage


@dataclass
class ObjectWriter:
    """Writes relative paths below ``root`` and counts what it did."""

    root: storage.Location
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    bytes_written: int = 0
    _fs: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._fs, _ = storage.filesystem(self.root)

    def location(self, relpath: str) -> storage.Location:
        return self.root.join(relpath)

    def put(self, relpath: str, data: bytes) -> bool:
        """Write unless the object already holds exactly these bytes; True when written."""
        target = self.location(relpath)
        if self._same(target.path, data):
            self.unchanged += 1
            return False
        storage.write_bytes_atomic(target, data)
        self.written += 1
        self.bytes_written += len(data)
        return True

    def holds(self, relpath: str, data: bytes) -> bool:
        """True when the object already has exactly these bytes (a `put` would not write)."""
        return self._same(self.location(relpath).path, data)

    def exists(self, relpath: str) -> bool:
        return self._fs.exists(self.location(relpath).path)

    def prune(self, reldir: str, keep: set[str]) -> int:
        """Delete files under ``reldir`` whose relative path (to root) is not in ``keep``."""
        base = self.location(reldir).path
        if not self._fs.exists(base):
            return 0
        root_path = self.root.path.rstrip("/") + "/"
        count = 0
        for path in sorted(self._fs.find(base)):
            rel = path[len(root_path) :] if path.startswith(root_path) else path
            if rel not in keep:
                self._fs.rm_file(path)
                count += 1
        self.removed += count
        return count

    def _same(self, path: str, data: bytes) -> bool:
        try:
            info = self._fs.info(path)
        except FileNotFoundError:
            return False
        if info.get("type") == "directory" or int(info.get("size", -1)) != len(data):
            return False
        return self._fs.cat_file(path) == data

    def summary(self) -> dict[str, int]:
        return {
            "written": self.written,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "bytes_written": self.bytes_written,
        }
