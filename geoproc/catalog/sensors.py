"""Per-collection profiles: which asset holds which common band, how to scale it, what is fill.

One table for the whole pipeline, so the sample generator, the cube builder and the
products agree on names (STAC `eo:common_name`), units and QA bits. Values follow the
HLS v2.0 user guide (scale 0.0001, fill -9999, thermal in degC x 100, Fmask bit layout),
the Sentinel-2 L2A product spec (SCL classes, +1000 offset from baseline 04.00) and the
Sentinel-1 RTC conventions (linear gamma0, nodata 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from geoproc.errors import UnknownNameError

KELVIN_AT_0C = 273.15


@dataclass(frozen=True)
class BandProfile:
    """How one asset maps to a physical quantity: ``value = dn * scale + offset``."""

    asset: str
    """Asset key in the STAC item."""
    name: str
    """Common band name after assembly (`red`, `nir08`, `lwir11`, `vv`, ...)."""
    scale: float = 1.0
    """Multiplier from stored number to physical value."""
    offset: float = 0.0
    """Added after scaling (e.g. 273.15 turns HLS degC into kelvin)."""
    nodata: float | None = None
    """Fill value in the stored numbers."""
    dtype: str = "int16"
    """Stored data type of the asset."""
    units: str = "1"
    """Units of the physical value (`1` for reflectance, `K`, or `1` for linear gamma0)."""
    center_wavelength: float | None = None
    """Centre wavelength in micrometres (for `eo:bands`)."""
    full_width_half_max: float | None = None
    """Band width in micrometres."""
    original_name: str | None = None
    """The name the provider uses (B04, B8A, ...), for `eo:bands[].name`."""
    keys: tuple[str, ...] = ()
    """Other asset keys providers use for this band (`ST_TRAD`, ...), tried after `asset`."""
    long_name: str = ""
    """What the band is, for the cube's CF `long_name` (empty: derived from the name)."""

    @property
    def lookup_keys(self) -> tuple[str, ...]:
        """Asset keys to try, in order: the profile's key, other providers' keys, the common name."""
        return tuple(dict.fromkeys((self.asset, *self.keys, self.name)))


@dataclass(frozen=True)
class QAProfile:
    """Where the quality band lives and how to read it."""

    asset: str
    """Asset key of the QA layer (`Fmask`, `SCL`)."""
    kind: str
    """`fmask_bits` (HLS Fmask), `scl_classes` (Sentinel-2 SCL) or `landsat_qa_pixel`."""
    nodata: int
    """Fill value of the QA layer (255 for Fmask, 0 for SCL, bit 0 set for QA_PIXEL)."""
    keys: tuple[str, ...] = ()
    """Other asset keys providers use for the QA layer."""

    @property
    def lookup_keys(self) -> tuple[str, ...]:
        return (self.asset, *self.keys)

    @property
    def cube_variable(self) -> str:
        """The cube variable the QA lands in (`fmask`: Landsat QA_PIXEL is translated to it)."""
        return "scl" if self.kind == "scl_classes" else "fmask"


@dataclass(frozen=True)
class SensorProfile:
    """Everything the pipeline needs to know about one STAC collection."""

    collection: str
    """STAC collection id this profile applies to."""
    family: str
    """`optical` or `sar`; decides which products can use it."""
    bands: tuple[BandProfile, ...]
    """Data bands, in asset order."""
    qa: QAProfile | None = None
    """Quality layer, when the collection has one."""
    resolution: float = 30.0
    """Native pixel size in metres."""
    platform_group: str = ""
    """Short label for the sensor family (`L30`, `S30`, `S2`, `S1`)."""
    aliases: tuple[str, ...] = field(default_factory=tuple)
    """Other collection ids of the same product in public catalogs."""
    raster_bands_scaling: bool = False
    """Take scale/offset from the asset's `raster:bands` when given (S2, Landsat C2), else ours."""

    def band(self, name: str) -> BandProfile:
        for b in self.bands:
            if b.name == name:
                return b
        raise UnknownNameError(
            f"Collection {self.collection!r} has no band {name!r}; it has "
            f"{', '.join(b.name for b in self.bands)}."
        )

    @property
    def band_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bands)


# Fmask (HLS v2.0 user guide, table 9). Bits 6-7 are a two-bit aerosol level, not a flag.
FMASK_BITS = {
    "cirrus": 0,
    "cloud": 1,
    "adjacent_cloud": 2,
    "cloud_shadow": 3,
    "snow_ice": 4,
    "water": 5,
}
FMASK_AEROSOL_SHIFT = 6
FMASK_NODATA = 255
DEFAULT_FMASK_MASKED = ("cloud", "adjacent_cloud", "cloud_shadow")

# Sentinel-2 L2A scene classification (SCL) values.
SCL_CLASSES = {
    0: "no_data",
    1: "saturated_or_defective",
    2: "dark_area_pixels",
    3: "cloud_shadows",
    4: "vegetation",
    5: "not_vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud_medium_probability",
    9: "cloud_high_probability",
    10: "thin_cirrus",
    11: "snow",
}
DEFAULT_SCL_MASKED = (0, 1, 3, 8, 9, 10)

_R = {"scale": 0.0001, "nodata": -9999, "dtype": "int16", "units": "1"}
_T = {"scale": 0.01, "offset": KELVIN_AT_0C, "nodata": -9999, "dtype": "int16", "units": "K"}

HLS_L30 = SensorProfile(
    collection="HLSL30_2.0",
    family="optical",
    platform_group="L30",
    aliases=("HLSL30.v2.0", "hls2-l30"),
    bands=(
        BandProfile(
            "B01",
            "coastal",
            center_wavelength=0.443,
            full_width_half_max=0.02,
            original_name="B01",
            **_R,
        ),
        BandProfile(
            "B02",
            "blue",
            center_wavelength=0.482,
            full_width_half_max=0.06,
            original_name="B02",
            **_R,
        ),
        BandProfile(
            "B03",
            "green",
            center_wavelength=0.561,
            full_width_half_max=0.06,
            original_name="B03",
            **_R,
        ),
        BandProfile(
            "B04",
            "red",
            center_wavelength=0.655,
            full_width_half_max=0.04,
            original_name="B04",
            **_R,
        ),
        BandProfile(
            "B05",
            "nir08",
            center_wavelength=0.865,
            full_width_half_max=0.03,
            original_name="B05",
            **_R,
        ),
        BandProfile(
            "B06",
            "swir16",
            center_wavelength=1.609,
            full_width_half_max=0.08,
            original_name="B06",
            **_R,
        ),
        BandProfile(
            "B07",
            "swir22",
            center_wavelength=2.201,
            full_width_half_max=0.18,
            original_name="B07",
            **_R,
        ),
        BandProfile(
            "B09",
            "cirrus",
            center_wavelength=1.373,
            full_width_half_max=0.02,
            original_name="B09",
            **_R,
        ),
        BandProfile(
            "B10",
            "lwir11",
            center_wavelength=10.9,
            full_width_half_max=0.59,
            original_name="B10",
            **_T,
        ),
        BandProfile(
            "B11",
            "lwir12",
            center_wavelength=12.0,
            full_width_half_max=1.01,
            original_name="B11",
            **_T,
        ),
    ),
    qa=QAProfile("Fmask", "fmask_bits", FMASK_NODATA),
)

HLS_S30 = SensorProfile(
    collection="HLSS30_2.0",
    family="optical",
    platform_group="S30",
    aliases=("HLSS30.v2.0", "hls2-s30"),
    bands=(
        BandProfile(
            "B01",
            "coastal",
            center_wavelength=0.443,
            full_width_half_max=0.02,
            original_name="B01",
            **_R,
        ),
        BandProfile(
            "B02",
            "blue",
            center_wavelength=0.490,
            full_width_half_max=0.065,
            original_name="B02",
            **_R,
        ),
        BandProfile(
            "B03",
            "green",
            center_wavelength=0.560,
            full_width_half_max=0.035,
            original_name="B03",
            **_R,
        ),
        BandProfile(
            "B04",
            "red",
            center_wavelength=0.665,
            full_width_half_max=0.03,
            original_name="B04",
            **_R,
        ),
        BandProfile(
            "B05",
            "rededge1",
            center_wavelength=0.705,
            full_width_half_max=0.015,
            original_name="B05",
            **_R,
        ),
        BandProfile(
            "B06",
            "rededge2",
            center_wavelength=0.740,
            full_width_half_max=0.015,
            original_name="B06",
            **_R,
        ),
        BandProfile(
            "B07",
            "rededge3",
            center_wavelength=0.783,
            full_width_half_max=0.02,
            original_name="B07",
            **_R,
        ),
        BandProfile(
            "B08",
            "nir",
            center_wavelength=0.842,
            full_width_half_max=0.115,
            original_name="B08",
            **_R,
        ),
        BandProfile(
            "B8A",
            "nir08",
            center_wavelength=0.865,
            full_width_half_max=0.02,
            original_name="B8A",
            **_R,
        ),
        BandProfile(
            "B09",
            "nir09",
            center_wavelength=0.945,
            full_width_half_max=0.02,
            original_name="B09",
            **_R,
        ),
        BandProfile(
            "B10",
            "cirrus",
            center_wavelength=1.375,
            full_width_half_max=0.03,
            original_name="B10",
            **_R,
        ),
        BandProfile(
            "B11",
            "swir16",
            center_wavelength=1.610,
            full_width_half_max=0.09,
            original_name="B11",
            **_R,
        ),
        BandProfile(
            "B12",
            "swir22",
            center_wavelength=2.190,
            full_width_half_max=0.18,
            original_name="B12",
            **_R,
        ),
    ),
    qa=QAProfile("Fmask", "fmask_bits", FMASK_NODATA),
)

_S1 = {"nodata": 0.0, "dtype": "float32", "units": "1"}
SENTINEL1_RTC = SensorProfile(
    collection="sentinel-1-rtc",
    family="sar",
    platform_group="S1",
    resolution=10.0,
    aliases=("sentinel1-rtc-aws",),
    bands=(
        BandProfile("vv", "vv", keys=("gamma0_vv",), **_S1),
        BandProfile("vh", "vh", keys=("gamma0_vh",), **_S1),
    ),
)

_S2 = {"scale": 0.0001, "nodata": 0, "dtype": "uint16", "units": "1"}
SENTINEL2_L2A = SensorProfile(
    collection="sentinel-2-l2a",
    family="optical",
    platform_group="S2",
    resolution=10.0,
    bands=(
        BandProfile("B01", "coastal", original_name="B01", center_wavelength=0.443, **_S2),
        BandProfile("B02", "blue", original_name="B02", center_wavelength=0.490, **_S2),
        BandProfile("B03", "green", original_name="B03", center_wavelength=0.560, **_S2),
        BandProfile("B04", "red", original_name="B04", center_wavelength=0.665, **_S2),
        BandProfile("B05", "rededge1", original_name="B05", center_wavelength=0.705, **_S2),
        BandProfile("B06", "rededge2", original_name="B06", center_wavelength=0.740, **_S2),
        BandProfile("B07", "rededge3", original_name="B07", center_wavelength=0.783, **_S2),
        BandProfile("B08", "nir", original_name="B08", center_wavelength=0.842, **_S2),
        BandProfile("B8A", "nir08", original_name="B8A", center_wavelength=0.865, **_S2),
        BandProfile("B11", "swir16", original_name="B11", center_wavelength=1.610, **_S2),
        BandProfile("B12", "swir22", original_name="B12", center_wavelength=2.190, **_S2),
    ),
    qa=QAProfile("SCL", "scl_classes", 0),
    aliases=("sentinel-2-c1-l2a", "sentinel-s2-l2a-cogs"),
    raster_bands_scaling=True,
)
# Processing baseline from which L2A digital numbers carry a +1000 offset (BOA_ADD_OFFSET).
S2_OFFSET_BASELINE = "04.00"
S2_BOA_ADD_OFFSET = -1000

# Landsat Collection 2 Level-2 (USGS LSDS-1619 "Landsat 8-9 C2 L2 Science Product Guide",
# section 4 and table 6-1): SR = DN x 2.75e-5 - 0.2, ST = DN x 0.00341802 + 149 K, fill 0;
# ST_TRAD/URAD/DRAD (W m-2 sr-1 um-1) x 0.001, ST_ATRAN/EMIS x 0.0001, fill -9999.
# Asset keys are common names at USGS (landsat-c2l2-sr/-st) and the Planetary Computer
# (landsat-c2-l2); SR and ST items of one scene fall into one time step.
_LSR = {"scale": 2.75e-5, "offset": -0.2, "nodata": 0, "dtype": "uint16", "units": "1"}
_LATM = {"nodata": -9999, "dtype": "int16"}
LANDSAT_C2_L2 = SensorProfile(
    collection="landsat-c2-l2",
    family="optical",
    platform_group="LC2",
    aliases=("landsat-c2l2-sr", "landsat-c2l2-st"),
    raster_bands_scaling=True,
    bands=(
        BandProfile("coastal", "coastal", center_wavelength=0.443, **_LSR),
        BandProfile("blue", "blue", center_wavelength=0.482, **_LSR),
        BandProfile("green", "green", center_wavelength=0.561, **_LSR),
        BandProfile("red", "red", center_wavelength=0.655, **_LSR),
        BandProfile("nir08", "nir08", center_wavelength=0.865, **_LSR),
        BandProfile("swir16", "swir16", center_wavelength=1.609, **_LSR),
        BandProfile("swir22", "swir22", center_wavelength=2.201, **_LSR),
        BandProfile(
            "lwir11", "st_temperature", keys=("ST_B10", "lwir"), scale=0.00341802, offset=149.0,
            nodata=0, dtype="uint16", units="K", long_name="Landsat C2 L2 surface temperature",
        ),
        BandProfile(
            "trad", "st_trad", keys=("ST_TRAD",), scale=0.001, units="W m-2 sr-1 um-1",
            long_name="thermal band top-of-atmosphere radiance", **_LATM,
        ),
        BandProfile(
            "urad", "st_urad", keys=("ST_URAD",), scale=0.001, units="W m-2 sr-1 um-1",
            long_name="upwelling atmospheric radiance", **_LATM,
        ),
        BandProfile(
            "drad", "st_drad", keys=("ST_DRAD",), scale=0.001, units="W m-2 sr-1 um-1",
            long_name="downwelling atmospheric radiance", **_LATM,
        ),
        BandProfile(
            "atran", "st_atran", keys=("ST_ATRAN",), scale=0.0001, units="1",
            long_name="atmospheric transmittance", **_LATM,
        ),
        BandProfile(
            "emis", "st_emis", keys=("ST_EMIS",), scale=0.0001, units="1",
            long_name="thermal band surface emissivity (ASTER GED)", **_LATM,
        ),
    ),
    qa=QAProfile("qa_pixel", "landsat_qa_pixel", 1, keys=("QA_PIXEL",)),
)  # fmt: skip
# QA_PIXEL bits (LSDS-1619 table 6-3) -> the Fmask bit of the same meaning in the cube's
# `fmask` variable, so products read one QA convention. Bit 0 (fill) becomes 255.
LANDSAT_QA_TO_FMASK = {
    2: "cirrus",
    3: "cloud",
    1: "adjacent_cloud",
    4: "cloud_shadow",
    5: "snow_ice",
    7: "water",
}

PROFILES: dict[str, SensorProfile] = {
    p.collection: p for p in (HLS_L30, HLS_S30, SENTINEL1_RTC, SENTINEL2_L2A, LANDSAT_C2_L2)
}


def profile_for(collection: str) -> SensorProfile:
    """The profile of a collection id (or one of its public aliases)."""
    if collection in PROFILES:
        return PROFILES[collection]
    for p in PROFILES.values():
        if collection in p.aliases:
            return p
    known = sorted(list(PROFILES) + [a for p in PROFILES.values() for a in p.aliases])
    raise UnknownNameError(
        f"Unknown collection {collection!r}: pass --collections with one or more of {', '.join(known)}."
    )
