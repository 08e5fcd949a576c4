"""STAC Items and Collections shaped like the real HLS v2.0 and Sentinel-1 RTC catalogs.

Shapes follow the LP DAAC CMR-STAC / Planetary Computer `hls2-*` items (HLS v2.0 user
guide naming: `HLS.S30.T32TQT.2024153T094231.v2.0`, one COG per band, `B10/B11` brightness
temperature in degC x 100) and the stactools-sentinel1 RTC items (`S1A_20240104_32TQT_ASC`,
`sar:*`, `sat:*` fields), with the projection (v1.1: `proj:epsg` because stackstac 0.5
reads nothing else), raster and eo extensions filled in from `geoproc.catalog.sensors`, the single
source of band names, scales and fill values.
"""

from __future__ import annotations

import datetime as dt
import json

from shapely.geometry import mapping

from geoproc.catalog.sensors import SensorProfile, profile_for
from geoproc.dev.sample.region import Granule
from geoproc.dev.sample.schedule import Acquisition

STAC_VERSION = "1.0.0"
EXT = {
    "eo": "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "raster": "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "proj": "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "sat": "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
    "sar": "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
    "view": "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "mgrs": "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "item_assets": "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json",
}
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
HLS_PRODUCT = {"HLSS30_2.0": "S30", "HLSL30_2.0": "L30"}
_CONSTELLATION = {
    "sentinel-2a": "sentinel-2",
    "sentinel-2b": "sentinel-2",
    "landsat-8": "landsat",
    "landsat-9": "landsat",
}
_INSTRUMENTS = {"HLSS30_2.0": ["msi"], "HLSL30_2.0": ["oli", "tirs"], "sentinel-1-rtc": ["c-sar"]}
ITEM_ASSET_PATTERN = "../../data/{collection}/{item_id}/{item_id}.{asset}.tif"


def item_id(acq: Acquisition, granule: Granule) -> str:
    """Real naming: HLS.{S30|L30}.T{tile}.{YYYYDOY}T{HHMMSS}.v2.0 or S1A_{YYYYMMDD}_{tile}_{ASC|DSC}."""
    if acq.collection in HLS_PRODUCT:
        stamp = acq.datetime.strftime("%Y%j") + "T" + acq.datetime.strftime("%H%M%S")
        return f"HLS.{HLS_PRODUCT[acq.collection]}.T{granule.name}.{stamp}.v2.0"
    direction = "ASC" if acq.orbit_state == "ascending" else "DSC"
    return f"S1A_{acq.datetime:%Y%m%d}_{granule.name}_{direction}"


def asset_keys(collection: str) -> list[str]:
    profile = profile_for(collection)
    keys = [b.asset for b in profile.bands]
    if profile.qa is not None:
        keys.append(profile.qa.asset)
    return keys


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stac_common_name(name: str) -> str:
    """eo v1.1 knows one `rededge`; the pipeline's rededge1..3 stay distinguishable by band name."""
    return "rededge" if name.startswith("rededge") else name


def _asset_definitions(profile: SensorProfile, resolution: float) -> dict[str, dict]:
    """Asset fields without href (also used for the collections' item_assets)."""
    out: dict[str, dict] = {}
    for b in profile.bands:
        raster = {
            "data_type": b.dtype,
            "nodata": b.nodata,
            "scale": b.scale,
            "offset": b.offset,
            "spatial_resolution": resolution,
        }
        if b.units != "1":
            raster["unit"] = {"K": "kelvin"}.get(b.units, b.units)
        asset = {
            "type": COG_TYPE,
            "title": f"{b.original_name or b.asset} ({b.name})",
            "roles": ["data"],
            "raster:bands": [raster],
        }
        if profile.family == "optical":
            eo = {"name": b.original_name or b.asset, "common_name": _stac_common_name(b.name)}
            if b.center_wavelength is not None:
                eo["center_wavelength"] = b.center_wavelength
            if b.full_width_half_max is not None:
                eo["full_width_half_max"] = b.full_width_half_max
            asset["eo:bands"] = [eo]
        else:
            asset["title"] = f"Gamma0 {b.asset.upper()} backscatter (linear power)"
            asset["raster:bands"][0]["sampling"] = "area"
        out[b.asset] = asset
    if profile.qa is not None:
        out[profile.qa.asset] = {
            "type": COG_TYPE,
            "title": "Fmask quality bits (1 cloud, 2 adjacent cloud, 3 shadow, 4 snow/ice, 5 water, 6-7 aerosol)",
            "roles": ["data", "cloud"],
            "raster:bands": [
                {
                    "data_type": "uint8",
                    "nodata": profile.qa.nodata,
                    "spatial_resolution": resolution,
                }
            ],
        }
    return out


def build_item(
    acq: Acquisition,
    granule: Granule,
    *,
    cloud_cover: float | None,
    valid_percent: float,
    sun_zenith: float,
    sun_azimuth: float,
    extra_properties: dict | None = None,
) -> dict:
    """One STAC Item (relative asset hrefs into the archive's data/ folder)."""
    profile = profile_for(acq.collection)
    iid = item_id(acq, granule)
    footprint = granule.footprint_lonlat()
    x0, y0, x1, y1 = granule.bounds
    props: dict = {
        "datetime": _iso(acq.datetime),
        "start_datetime": _iso(acq.datetime - dt.timedelta(seconds=12)),
        "end_datetime": _iso(acq.datetime + dt.timedelta(seconds=12)),
        "created": _iso(acq.datetime + dt.timedelta(days=2)),
        "platform": acq.platform,
        "instruments": _INSTRUMENTS[acq.collection],
        "gsd": 30,
        "proj:epsg": granule.epsg,
        "proj:shape": [granule.height, granule.width],
        "proj:transform": list(granule.transform),
        "proj:bbox": [x0, y0, x1, y1],
        "sat:orbit_state": acq.orbit_state,
        "sat:relative_orbit": acq.relative_orbit,
        "mgrs:utm_zone": granule.zone,
        "mgrs:latitude_band": granule.name[2],
        "mgrs:grid_square": granule.name[3:],
        "geoproc:synthetic": True,
        "geoproc:valid_percent": round(valid_percent, 2),
    }
    extensions = [EXT["proj"], EXT["raster"], EXT["sat"], EXT["mgrs"]]
    if profile.family == "optical":
        props["constellation"] = _CONSTELLATION[acq.platform]
        props["eo:cloud_cover"] = round(float(cloud_cover or 0.0), 2)
        props["view:sun_elevation"] = round(90.0 - sun_zenith, 4)
        props["view:sun_azimuth"] = round(sun_azimuth, 4)
        if acq.collection == "HLSL30_2.0":
            props["landsat:wrs_path"] = f"{acq.relative_orbit:03d}"
            del props["sat:relative_orbit"]
        else:
            props["sat:absolute_orbit"] = acq.absolute_orbit
        extensions = [EXT["eo"], *extensions, EXT["view"]]
    else:
        props.update(
            {
                "constellation": "sentinel-1",
                "sat:absolute_orbit": acq.absolute_orbit,
                "sar:frequency_band": "C",
                "sar:center_frequency": 5.405,
                "sar:observation_direction": "right",
                "sar:instrument_mode": "IW",
                "sar:product_type": "RTC",
                "sar:polarizations": ["VV", "VH"],
                "sar:resolution_range": 20.3,
                "sar:resolution_azimuth": 22.6,
                "sar:pixel_spacing_range": 10,
                "sar:pixel_spacing_azimuth": 10,
                "sar:looks_equivalent_number": 4.4,
                "sar:looks_range": 5,
                "sar:looks_azimuth": 1,
                "sentinel:product_ids": [
                    f"S1A_IW_GRDH_1SDV_{acq.datetime - dt.timedelta(seconds=12):%Y%m%dT%H%M%S}_"
                    f"{acq.datetime + dt.timedelta(seconds=13):%Y%m%dT%H%M%S}_{acq.absolute_orbit:06d}_"
                    f"{(acq.absolute_orbit * 7919) % 0xFFFFFF:06X}_{(acq.key * 40503) % 0xFFFF:04X}"
                ],
                "description": "Synthetic RTC gamma0, terrain-flattened and resampled to the 30 m HLS grid "
                "(gsd and proj:transform are 30 m; sar:pixel_spacing is that of the source GRD).",
            }
        )
        extensions = [EXT["sar"], *extensions]
    if extra_properties:
        props.update(extra_properties)

    assets = {}
    for key, definition in _asset_definitions(profile, 30.0).items():
        asset = {
            "href": ITEM_ASSET_PATTERN.format(collection=acq.collection, item_id=iid, asset=key),
            **definition,
        }
        if profile.family == "sar":
            asset["raster:bands"] = [
                {
                    **asset["raster:bands"][0],
                    "statistics": {"valid_percent": round(valid_percent, 3)},
                }
            ]
        assets[key] = asset

    coll_href = f"../../collections/{acq.collection}.json"
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": extensions,
        "id": iid,
        "collection": acq.collection,
        "geometry": json.loads(json.dumps(mapping(footprint))),
        "bbox": [round(v, 6) for v in footprint.bounds],
        "properties": props,
        "links": [
            {"rel": "collection", "href": coll_href, "type": "application/json"},
            {"rel": "parent", "href": coll_href, "type": "application/json"},
        ],
        "assets": assets,
    }


_COLLECTION_TEXT = {
    "HLSS30_2.0": (
        "HLS Sentinel-2 MSI Surface Reflectance Daily Global 30m v2.0 (synthetic)",
        "PDDL-1.0",
    ),
    "HLSL30_2.0": (
        "HLS Landsat OLI Surface Reflectance and TOA Brightness Daily Global 30m v2.0 (synthetic)",
        "PDDL-1.0",
    ),
    "sentinel-1-rtc": (
        "Sentinel-1 Radiometrically Terrain Corrected (RTC) gamma0 (synthetic)",
        "CC-BY-4.0",
    ),
}


def build_collection(collection: str, *, bbox: list[float], start: str, end: str) -> dict:
    """A STAC Collection with item_assets taken from the sensor profile."""
    profile = profile_for(collection)
    title, license_id = _COLLECTION_TEXT[collection]
    summaries: dict = {"gsd": [30], "instruments": _INSTRUMENTS[collection]}
    if collection == "HLSS30_2.0":
        summaries["platform"] = ["sentinel-2a", "sentinel-2b"]
    elif collection == "HLSL30_2.0":
        summaries["platform"] = ["landsat-8", "landsat-9"]
    else:
        summaries["platform"] = ["sentinel-1a"]
        summaries["sar:polarizations"] = ["VV", "VH"]
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [EXT["item_assets"]],
        "id": collection,
        "title": title,
        "description": f"{title}. Generated by geoproc.dev.sample as a test bed; not real observations.",
        "license": license_id,
        "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [[start, end]]}},
        "summaries": summaries,
        "item_assets": _asset_definitions(profile, 30.0),
        "links": [],
    }
