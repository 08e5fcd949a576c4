"""Per-chunk completion markers stored inside the product store.

Why: a chunk counts as done only when its marker exists, and the marker is written after
the chunk's data, so a crash at any point leaves at worst a chunk that is recomputed
(and rewritten with the same bytes). Markers live under ``_geoproc_done/`` in the store,
which Zarr readers ignore, so they travel with the store on file:// and s3:// alike.
"""

from __future__ import annotations

from geoproc.inference._io import filesystem

MARKER_DIR = "_geoproc_done"
TEMPLATE_KEY = "template"


class ChunkMarkers:
    """Read and write the completion markers of one product store."""

    def __init__(self, store_url: str) -> None:
        self.fs, root = filesystem(store_url)
        self.root = f"{root}/{MARKER_DIR}"
        self._dir_made = False

    def done(self) -> set[str]:
        """Keys of every completed chunk (one listing, not one request per chunk)."""
        try:
            names = self.fs.ls(self.root, detail=False)
        except FileNotFoundError:
            return set()
        return {n.rstrip("/").rsplit("/", 1)[-1] for n in names}

    def mark(self, key: str) -> None:
        """Record ``key`` as complete; call only after its data is written."""
        if not self._dir_made:
            self.fs.makedirs(self.root, exist_ok=True)
            self._dir_made = True
        self.fs.pipe_file(f"{self.root}/{key}", b"done\n")

    def clear(self) -> None:
        """Forget every marker (before a template is rewritten)."""
        if self.fs.exists(self.root):
            self.fs.rm(self.root, recursive=True)
        self._dir_made = False
