"""Every data file of an engine output store, to compare runs byte for byte."""

from __future__ import annotations

from pathlib import Path

from geoproc.inference.markers import MARKER_DIR


def store_bytes(url: str) -> dict[str, bytes]:
    """Relative path -> bytes of every file, leaving out the engine's resume markers."""
    root = Path(url)
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and MARKER_DIR not in p.parts
    }
