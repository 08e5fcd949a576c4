"""Publishing: product stores -> COGs, web tiles, a STAC catalog and an offline viewer.

The entry point is `publish_run` (``geoproc.publish.publisher``); it is re-exported here
lazily so importing the package does not pull in rio-tiler and GDAL until it is used.
"""

from __future__ import annotations

__all__ = ["publish_run"]


def __getattr__(name: str):
    if name == "publish_run":
        from geoproc.publish.publisher import publish_run

        return publish_run
    raise AttributeError(name)
