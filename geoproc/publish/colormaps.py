"""Colour styles of the published layers: class tables and fixed ramps, plus their legends.

Why fixed ramps: a web map compares dates and tiles side by side, so a colour must mean the
same value everywhere; stretching each tile to its own range would invent seams at tile and
zone edges. LST uses a perceptual "inferno"-like ramp over 250-330 K (the span of land
surface temperature in Landsat Collection 2 ST products outside polar night and deserts,
USGS LSDS-1619 "Landsat 8-9 C2 L2 Science Product Guide"); values outside are clipped to the
end colours. Class maps and bit fields take their classes, names and colours from
`geoproc.publish.class_tables`, the one table the COG colour tables, the STAC
classification and the viewer legend all read. Nodata is always transparent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geoproc.publish.class_tables import (
    DRY_COLOR,
    FLOOD_COLOR,
    PERMANENT_WATER_COLOR,
    RGBA,
    BitField,
    ClassEntry,
    bitfields,
    class_entries,
    flag_table,
)

__all__ = ["DRY_COLOR", "FLOOD_COLOR", "PERMANENT_WATER_COLOR", "LayerStyle", "style_for"]


@dataclass(frozen=True)
class LayerStyle:
    """How one variable is drawn and explained in the legend."""

    title: str
    units: str = ""
    classes: tuple[ClassEntry, ...] = ()
    """Non-empty for class maps: one colour per stored value."""
    vmin: float = 0.0
    vmax: float = 1.0
    stops: tuple[RGBA, ...] = field(default_factory=tuple)
    """Colours of a continuous ramp from vmin to vmax (evenly spaced)."""
    colormap_name: str = "inferno"
    """The matplotlib/rio-tiler colormap closest to ``stops`` (render extension hint)."""
    bitfields: tuple[BitField, ...] = ()
    """Fields of a bit-field variable (CF flag_masks), published as STAC bit fields."""

    @property
    def is_categorical(self) -> bool:
        """Values are codes (classes or bits): never averaged, interpolated or predicted."""
        return bool(self.classes or self.bitfields)

    @property
    def is_classes(self) -> bool:
        return bool(self.classes)

    def class_colormap(self) -> dict[int, RGBA]:
        """Value -> RGBA for class maps (GeoTIFF colour table, rio-tiler colormap)."""
        return {c.value: c.rgba for c in self.classes}

    def ramp_lut(self) -> dict[int, RGBA]:
        """256-entry colormap for data already scaled to 0..255 by `to_ramp_index`."""
        stops = np.asarray(self.stops, dtype="float64")
        pos = np.linspace(0.0, 255.0, len(stops))
        out: dict[int, RGBA] = {}
        for i in range(256):
            rgba = [int(round(np.interp(i, pos, stops[:, k]))) for k in range(4)]
            out[i] = (rgba[0], rgba[1], rgba[2], rgba[3])
        return out

    def to_ramp_index(self, values: np.ndarray) -> np.ndarray:
        """Physical values -> uint8 ramp position (clipped at both ends)."""
        scaled = (np.asarray(values, dtype="float64") - self.vmin) / (self.vmax - self.vmin)
        scaled = np.nan_to_num(scaled, nan=0.0, posinf=1.0, neginf=0.0)
        return np.clip(np.round(scaled * 255.0), 0, 255).astype("uint8")

    def render(self, asset: str, attrs: dict) -> dict:
        """Render extension entry drawing ``asset`` as the viewer does (stored-value stretch)."""
        out: dict = {"title": self.title, "assets": [asset]}
        if self.is_classes:
            out["colormap"] = {str(c.value): list(c.rgba) for c in self.classes}
            out["resampling"] = "nearest"
            return out
        scale = float(attrs.get("scale_factor", 1.0)) or 1.0
        offset = float(attrs.get("add_offset", 0.0))
        lo, hi = (self.vmin - offset) / scale, (self.vmax - offset) / scale
        out["rescale"] = [[lo, hi]]
        out["colormap_name"] = self.colormap_name
        out["resampling"] = "nearest" if self.is_categorical else "bilinear"
        return out

    def legend(self) -> dict:
        """JSON-ready legend for the viewer."""
        if self.is_classes:
            return {
                "title": self.title,
                "type": "classes",
                "classes": [
                    {"value": c.value, "name": c.name, "label": c.label, "color": _css(c.rgba)}
                    for c in self.classes
                ],
            }
        return {
            "title": self.title,
            "type": "ramp",
            "units": self.units,
            "min": self.vmin,
            "max": self.vmax,
            "colors": [_css(s) for s in self.stops],
        }


def _css(rgba: RGBA) -> str:
    r, g, b, a = rgba
    return f"rgba({r},{g},{b},{a / 255:.3g})"


_INFERNO = (
    (0, 0, 4, 255),
    (40, 11, 84, 255),
    (101, 21, 110, 255),
    (159, 42, 99, 255),
    (212, 72, 66, 255),
    (245, 125, 21, 255),
    (250, 193, 39, 255),
    (252, 255, 164, 255),
)
_BLUES = ((247, 251, 255, 255), (107, 174, 214, 255), (8, 48, 107, 255))
_GREENS = ((247, 252, 245, 255), (116, 196, 118, 255), (0, 68, 27, 255))
_GREYS = ((20, 20, 20, 255), (240, 240, 240, 255))

STYLES: dict[str, LayerStyle] = {
    "water_probability": LayerStyle(
        title="Water probability",
        units="%",
        vmin=0,
        vmax=100,
        stops=_BLUES,
        colormap_name="blues",
    ),
    "lst": LayerStyle(
        title="Land surface temperature", units="K", vmin=250.0, vmax=330.0, stops=_INFERNO
    ),
    "emissivity": LayerStyle(
        title="Emissivity", units="1", vmin=0.9, vmax=1.0, stops=_GREYS, colormap_name="greys"
    ),
    "canopy_cover": LayerStyle(
        title="Canopy cover", units="%", vmin=0, vmax=100, stops=_GREENS, colormap_name="greens"
    ),
}

PRIMARY_VARIABLE: dict[str, str] = {"flood": "water", "lst": "lst", "canopy": "canopy_class"}
"""The variable drawn as web tiles for each product (others are published as COGs)."""


CLASS_TITLES: dict[str, str] = {"water": "Surface water", "canopy_class": "Tree canopy"}
"""Legend titles of class maps (their classes come from `class_tables`)."""


def style_for(
    variable: str, attrs: dict | None = None, *, product: str | None = None
) -> LayerStyle:
    """The style of a variable: class maps and bit fields from `class_tables`, ramps here."""
    attrs = attrs or {}
    table = flag_table(product, variable, attrs)
    if table is not None:
        return LayerStyle(
            title=CLASS_TITLES.get(variable, str(attrs.get("long_name", variable))),
            units=str(attrs.get("units", "")) if table.is_bitfield else "",
            classes=class_entries(table),
            bitfields=bitfields(table),
        )
    if variable in STYLES:
        return STYLES[variable]
    lo, hi = attrs.get("valid_range", (0.0, 1.0))
    return LayerStyle(
        title=str(attrs.get("long_name", variable)),
        units=str(attrs.get("units", "")),
        vmin=float(lo),
        vmax=float(hi),
        stops=_INFERNO,
    )


def primary_variable(product: str, variables: list[str]) -> str:
    preferred = PRIMARY_VARIABLE.get(product)
    return preferred if preferred in variables else variables[0]
