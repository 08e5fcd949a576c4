"""Cloud-optimised GeoTIFFs with fixed creation options, so a seed gives identical bytes.

GDAL's COG driver (https://gdal.org/drivers/raster/cog.html) writes the tiles, the
overviews and the ghost header in one pass; deflate with a predictor keeps files small, no
timestamps are written, and one thread keeps the byte stream independent of scheduling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

from geoproc.dev.sample.region import Granule


def write_cog(
    path: Path,
    data: np.ndarray,
    granule: Granule,
    *,
    nodata: float | int | None,
    blocksize: int,
    categorical: bool = False,
    descriptions: tuple[str, ...] = (),
    scale: float | None = None,
    offset: float | None = None,
    tags: dict[str, str] | None = None,
) -> None:
    """Write a (bands, rows, cols) or (rows, cols) array on a granule grid as a COG."""
    arr = data if data.ndim == 3 else data[np.newaxis]
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "COG",
        "width": arr.shape[2],
        "height": arr.shape[1],
        "count": arr.shape[0],
        "dtype": arr.dtype.name,
        "crs": CRS.from_epsg(granule.epsg),
        "transform": Affine(*granule.transform),
        "nodata": nodata,
        "compress": "DEFLATE",
        "level": 6,
        "predictor": "NO" if categorical else "YES",
        "blocksize": blocksize,
        "overview_resampling": "NEAREST" if categorical else "AVERAGE",
        "num_threads": 1,
        "statistics": "NO",
    }
    with rasterio.Env(GDAL_NUM_THREADS="1"), rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
        for i, text in enumerate(descriptions, start=1):
            dst.set_band_description(i, text)
        if scale is not None:
            dst.scales = (scale,) * arr.shape[0]
            dst.offsets = ((offset or 0.0),) * arr.shape[0]
        if tags:
            dst.update_tags(**tags)
