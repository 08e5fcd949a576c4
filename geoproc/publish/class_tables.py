"""The class tables of class and bit-field variables: one source for every published output.

Why one table: the COG colour table, the STAC ``classification:classes`` /
``classification:bitfields`` and the viewer legend used to carry their own class names
("dry" in the viewer, ``not_water`` in the store). Now values and names come from the
product itself (CF ``flag_values`` / ``flag_masks`` / ``flag_meanings``, which the product
stage writes from ``geoproc.products.<p>.SPEC.outputs``), labels are the names with
spaces, and only colours are chosen here, keyed by class name. The store's own attributes
win over the current SPEC, because they describe the values in that store (a store made by
an older algorithm version keeps its own classes); the SPEC fills in what a store lacks.

Bit-field variables (CF ``flag_masks``) are published as STAC ``classification:bitfields``
(offset, length and the classes of each field); the small ones (at most three one-bit
flags, e.g. flood's ``water_source``) also get a colour per combination so GIS users see
them, while wide ones (``lst_qa``, ``diagnostic``) get no colour table at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RGBA = tuple[int, int, int, int]

FLOOD_COLOR: RGBA = (0, 200, 255, 255)
PERMANENT_WATER_COLOR: RGBA = (20, 70, 170, 255)
DRY_COLOR: RGBA = (226, 218, 196, 255)
NO_TREE_COLOR: RGBA = (236, 232, 214, 255)
NO_SIGNAL_COLOR: RGBA = (190, 190, 190, 255)
"""Combination 0 of a bit field (no flag set)."""

CLASS_COLOURS: dict[str, RGBA] = {
    # flood `water` (DSWx-HLS colours, OPERA product spec JPL D-107395)
    "not_water": DRY_COLOR,
    "dry": DRY_COLOR,
    "reference_water": PERMANENT_WATER_COLOR,
    "permanent_water": PERMANENT_WATER_COLOR,
    "flood_water": FLOOD_COLOR,
    "flood": FLOOD_COLOR,
    # canopy `canopy_class` (forest type map practice: broadleaf light, conifer dark)
    "no_tree": NO_TREE_COLOR,
    "none": NO_TREE_COLOR,
    "broadleaf": (110, 190, 70, 255),
    "conifer": (20, 95, 55, 255),
}
"""Colour of a class by its CF name; names not listed get Tableau-10 colours in order."""

MAX_COMBINATION_BITS = 3
"""Bit fields of at most this many one-bit flags get one colour per combination."""


@dataclass(frozen=True)
class ClassEntry:
    """One class of a class map: stored value, CF name, colour."""

    value: int
    name: str
    rgba: RGBA

    @property
    def label(self) -> str:
        """The name as people read it (legends, STAC descriptions)."""
        return self.name.replace("_", " ")


@dataclass(frozen=True)
class BitField:
    """One field of a bit-field variable (STAC classification bit field object)."""

    offset: int
    length: int
    classes: tuple[tuple[int, str], ...]
    """(value within the field, CF name)."""


@dataclass(frozen=True)
class FlagTable:
    """CF flag metadata of one variable."""

    values: tuple[int, ...] | None
    masks: tuple[int, ...] | None
    meanings: tuple[str, ...]

    @property
    def is_bitfield(self) -> bool:
        return self.masks is not None


def flag_table(product: str | None, variable: str, attrs: dict) -> FlagTable | None:
    """The variable's CF flags: from its own attributes, else the product SPEC; None if none."""
    found = _from_attrs(attrs)
    if found is None and product:
        found = _from_spec(product, variable)
    return found


def class_entries(table: FlagTable) -> tuple[ClassEntry, ...]:
    """Classes to colour: each flag value, or each combination of a small bit field."""
    if not table.is_bitfield:
        values = table.values or ()
        names = [_name(table.meanings, i, v) for i, v in enumerate(values)]
        return tuple(
            ClassEntry(v, n, _colour(n, i))
            for i, (v, n) in enumerate(zip(values, names, strict=True))
        )
    masks = table.masks or ()
    one_bit = all(m > 0 and m & (m - 1) == 0 for m in masks) and table.values is None
    if not one_bit or len(masks) > MAX_COMBINATION_BITS:
        return ()
    entries = []
    for combo in range(1 << len(masks)):
        value = sum(m for k, m in enumerate(masks) if combo >> k & 1)
        parts = [_name(table.meanings, k, m) for k, m in enumerate(masks) if combo >> k & 1]
        name = "-".join(parts) if parts else "none"
        colour = _colour(name, combo) if combo else NO_SIGNAL_COLOR
        entries.append(ClassEntry(value, name, colour))
    return tuple(sorted(entries, key=lambda e: e.value))


def bitfields(table: FlagTable) -> tuple[BitField, ...]:
    """The fields of a bit-field variable: one per distinct mask, in mask order.

    CF: a meaning with a one-bit mask and no flag value is that bit set; with flag values,
    the meaning holds where ``value & mask == flag_value`` (multi-bit fields).
    """
    if not table.is_bitfield:
        return ()
    masks = table.masks or ()
    values = table.values
    fields: dict[int, list[tuple[int, str]]] = {}
    for i, mask in enumerate(masks):
        offset = (mask & -mask).bit_length() - 1
        flag = values[i] if values is not None and i < len(values) else mask
        fields.setdefault(mask, []).append((flag >> offset, _name(table.meanings, i, flag)))
    out = []
    for mask, classes in sorted(fields.items()):
        offset = (mask & -mask).bit_length() - 1
        out.append(BitField(offset, mask.bit_length() - offset, tuple(classes)))
    return tuple(out)


def _from_attrs(attrs: dict) -> FlagTable | None:
    values, masks = attrs.get("flag_values"), attrs.get("flag_masks")
    if values is None and masks is None:
        return None
    return FlagTable(
        values=_ints(values),
        masks=_ints(masks),
        meanings=tuple(str(attrs.get("flag_meanings", "")).split()),
    )


def _from_spec(product: str, variable: str) -> FlagTable | None:
    from geoproc.errors import UnknownNameError
    from geoproc.product_registry import product_spec

    try:
        spec = product_spec(product)
        var = spec.output(variable)
    except (ImportError, AttributeError, KeyError, UnknownNameError):
        return None
    if var.flag_values is None and var.flag_masks is None:
        return None
    return FlagTable(
        values=tuple(var.flag_values) if var.flag_values is not None else None,
        masks=tuple(var.flag_masks) if var.flag_masks is not None else None,
        meanings=tuple(var.flag_meanings or ()),
    )


def _ints(raw: object) -> tuple[int, ...] | None:
    if raw is None:
        return None
    return tuple(int(v) for v in np.atleast_1d(np.asarray(raw)).reshape(-1))


def _name(meanings: tuple[str, ...], i: int, value: int) -> str:
    return meanings[i] if i < len(meanings) else str(value)


def _colour(name: str, i: int) -> RGBA:
    if name in CLASS_COLOURS:
        return CLASS_COLOURS[name]
    # Tableau-10, readable on light and dark backgrounds.
    palette = (
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    )
    r, g, b = palette[i % len(palette)]
    return (r, g, b, 255)
