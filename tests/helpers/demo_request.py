"""The demo's run request on a sample archive (no test functions here).

Named `demo_request`, not `requests`, so it can never be mistaken for the HTTP library.
"""

from __future__ import annotations

import json
from pathlib import Path

from geoproc.request import RunRequest


def run_request(archive: Path, url: str, out: Path) -> RunRequest:
    """The demo's request on an archive: all products over its AOI for 2024."""
    props = json.loads((archive / "aoi.geojson").read_text())["features"][0]["properties"]
    return RunRequest.create(
        products="flood,lst,canopy", aoi=str(archive / "aoi.geojson"), start="2024-01-01",
        end="2024-12-31", catalog=url, out=str(out),
        options={"tile_size_px": props["tile_size_px"]},
    )  # fmt: skip
