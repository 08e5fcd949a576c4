"""One product variable at one date -> the bytes of a Cloud Optimized GeoTIFF.

Written by GDAL's COG driver (GDAL >= 3.1; layout per the COG spec, https://cogeo.org and
OGC 21-026 "Cloud Optimized GeoTIFF"): 256 px internal tiles, DEFLATE with a predictor,
internal overviews (mode for class maps and bit fields so codes are never averaged into
new values, average for continuous ones), nodata, band description, units, scale/offset
and the CF attributes as GDAL metadata, and a colour table on 8-bit class maps (from
`class_tables`, the same classes STAC and the viewer show). The stored values are copied
bit for bit (packed integers stay packed; scale/offset travel as metadata), so the COG equals
the Zarr store. No timestamp or run id enters the file: the same input gives the same bytes,
which is what makes publishing idempotent.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS

from geoproc.publish.colormaps import LayerStyle

BLOCKSIZE = 256

_CF_TAGS = (
    "long_name",
    "standard_name",
    "units",
    "flag_values",
    "flag_masks",
    "flag_meanings",
    "valid_range",
)


def cog_bytes(
    values: np.ndarray,
    *,
    crs: CRS,
    transform: Affine,
    name: str,
    attrs: dict,
    style: LayerStyle | None = None,
    dataset_tags: dict[str, str] | None = None,
) -> bytes:
    """Encode a 2-D array as a COG; ``attrs`` are the variable's raw CF attributes."""
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"cog_bytes expects a 2-D array, got shape {values.shape}")
    nodata = nodata_of(values.dtype, attrs)
    # Codes (classes, bit fields) are never predicted or averaged into values they do not have.
    is_classes = (
        attrs.get("flag_values") is not None
        or attrs.get("flag_masks") is not None
        or bool(style and style.is_categorical)
    )
    profile = {
        "driver": "GTiff",
        "width": values.shape[1],
        "height": values.shape[0],
        "count": 1,
        "dtype": values.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
    }
    with tempfile.TemporaryDirectory(prefix="geoproc-cog-") as tmp:
        plain = Path(tmp) / "plain.tif"
        out = Path(tmp) / "cog.tif"
        with rasterio.open(plain, "w", **profile) as dst:
            dst.write(values, 1)
            dst.set_band_description(1, name)
            dst.scales = (float(attrs.get("scale_factor", 1.0)),)
            dst.offsets = (float(attrs.get("add_offset", 0.0)),)
            dst.units = (str(attrs.get("units", "")),)
            band_tags = {k: _tag_text(attrs[k]) for k in _CF_TAGS if k in attrs}
            if band_tags:
                dst.update_tags(1, **band_tags)
            if dataset_tags:
                dst.update_tags(**{k: str(v) for k, v in sorted(dataset_tags.items())})
            if style and style.is_classes and values.dtype == np.uint8:
                # A colour table only on 8-bit maps: on uint16 GDAL writes 65,536 entries.
                dst.write_colormap(1, style.class_colormap())
        with rasterio.open(plain) as src:
            rasterio.shutil.copy(
                src,
                out,
                driver="COG",
                BLOCKSIZE=BLOCKSIZE,
                COMPRESS="DEFLATE",
                PREDICTOR="YES" if not is_classes else "NO",
                OVERVIEWS="IGNORE_EXISTING",
                OVERVIEW_RESAMPLING="MODE" if is_classes else "AVERAGE",
                NUM_THREADS="1",
            )
        return out.read_bytes()


def nodata_of(dtype: np.dtype, attrs: dict) -> float | int | None:
    """The nodata value: ``_FillValue``/``missing_value``, NaN for floats without one."""
    for key in ("_FillValue", "missing_value"):
        if key in attrs and attrs[key] is not None:
            value = np.asarray(attrs[key]).reshape(-1)[0]
            if np.issubdtype(np.dtype(dtype), np.floating):
                return float(value)
            return int(value) if not (isinstance(value, float) and math.isnan(value)) else None
    if np.issubdtype(np.dtype(dtype), np.floating):
        return float("nan")
    return None


def _tag_text(value: object) -> str:
    if isinstance(value, (np.ndarray, list, tuple)):
        return " ".join(str(v) for v in np.asarray(value).reshape(-1).tolist())
    return str(value)
