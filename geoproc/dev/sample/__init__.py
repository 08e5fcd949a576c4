"""The sample archive generator: a synthetic, physically plausible HLS + Sentinel-1 archive.

`create_archive(out_dir, seed=0, size="small")` writes STAC collections and items, COGs and
ground truth; see `geoproc.dev.sample.archive` for the layout.
"""

from geoproc.dev.sample.archive import create_archive

__all__ = ["create_archive"]
