"""One class table per variable: COG colour tables, STAC classification and the viewer legend agree
with the product SPECs, bit fields are published as bit fields and wide ones get no palette."""

from __future__ import annotations

import importlib
import io

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from geoproc.publish import stac_items
from geoproc.publish.class_tables import DRY_COLOR, FLOOD_COLOR, PERMANENT_WATER_COLOR
from geoproc.publish.cog import cog_bytes
from geoproc.publish.colormaps import style_for
from geoproc.stac_schemas import validate_stac

CRS_UTM = CRS.from_epsg(32632)
TRANSFORM = Affine(30.0, 0.0, 600000.0, 0.0, -30.0, 5300000.0)


def _spec(product: str, variable: str):
    return importlib.import_module(f"geoproc.products.{product}").SPEC.output(variable)


def _cog(values: np.ndarray, attrs: dict, style, name: str) -> rasterio.DatasetReader:
    data = cog_bytes(values, crs=CRS_UTM, transform=TRANSFORM, name=name, attrs=attrs, style=style)
    return rasterio.MemoryFile(io.BytesIO(data)).open()


@pytest.mark.parametrize(("product", "variable"), [("flood", "water"), ("canopy", "canopy_class")])
def test_class_maps_carry_the_spec_names_everywhere(product, variable):
    spec = _spec(product, variable)
    attrs = spec.attrs()
    attrs["_FillValue"] = spec.fill_value
    style = style_for(variable, attrs, product=product)
    names = list(spec.flag_meanings)
    # STAC, legend and COG all read the one table, whose names are the SPEC's.
    stac = stac_items.classification_classes(style)
    assert [c["name"] for c in stac] == names
    assert [c["value"] for c in stac] == list(spec.flag_values)
    legend = style.legend()["classes"]
    assert [c["name"] for c in legend] == names
    assert [c["label"] for c in legend] == [n.replace("_", " ") for n in names]
    values = np.array([list(spec.flag_values) * 4] * 8, dtype=spec.dtype)
    with _cog(values, attrs, style, variable) as src:
        cmap = src.colormap(1)
        assert src.tags(1)["flag_meanings"] == " ".join(names)
        for entry in style.classes:
            assert cmap[entry.value] == entry.rgba
            assert stac[list(spec.flag_values).index(entry.value)]["color_hint"] == (
                "{:02X}{:02X}{:02X}".format(*entry.rgba[:3])
            )


def test_flood_water_colours_and_names():
    spec = _spec("flood", "water")
    style = style_for("water", {}, product="flood")  # no attrs: the SPEC fills in
    assert {c.name: c.rgba for c in style.classes} == {
        "not_water": DRY_COLOR,
        "reference_water": PERMANENT_WATER_COLOR,
        "flood_water": FLOOD_COLOR,
    }
    assert [c.value for c in style.classes] == list(spec.flag_values)


def test_water_source_gets_a_colour_per_sensor_combination():
    spec = _spec("flood", "water_source")
    style = style_for("water_source", spec.attrs(), product="flood")
    masks, names = spec.flag_masks, spec.flag_meanings
    expected = [
        (v, "-".join(n for m, n in zip(masks, names, strict=True) if v & m) or "none")
        for v in range(8)
    ]
    assert [(c.value, c.name) for c in style.classes] == expected
    assert expected[3][1] == f"{names[0]}-{names[1]}"  # e.g. optical-sar
    assert len({c.rgba for c in style.classes}) == 8
    values = np.arange(8, dtype="uint8").reshape(1, 8).repeat(8, axis=0)
    with _cog(values, spec.attrs(), style, "water_source") as src:
        cmap = src.colormap(1)
        assert all(cmap[c.value] == c.rgba for c in style.classes)
        assert src.read(1).tolist() == values.tolist()
    fields = stac_items.classification_fields(style)
    assert [f["offset"] for f in fields["classification:bitfields"]] == [0, 1, 2]


def test_lst_qa_is_a_bitfield_without_a_palette():
    spec = _spec("lst", "lst_qa")
    attrs = spec.attrs()
    style = style_for("lst_qa", attrs, product="lst")
    assert not style.is_classes and style.is_categorical
    fields = stac_items.classification_fields(style)
    by_offset = {f["offset"]: f for f in fields["classification:bitfields"]}
    assert sorted(by_offset) == [0, 1, 3, 5, 8, 9]
    method = by_offset[1]
    assert method["length"] == 2
    assert [(c["value"], c["name"]) for c in method["classes"]] == [
        (1, "method_rte"),
        (2, "method_single_channel"),
        (3, "method_split_window"),
    ]
    assert by_offset[5]["length"] == 3 and len(by_offset[5]["classes"]) == 6
    values = np.array([[2, 6, 8 | 32, 256 | 512]] * 8, dtype="uint16")
    with _cog(values, attrs, style, "lst_qa") as src:
        with pytest.raises(ValueError):
            src.colormap(1)  # no 65,536-entry palette
        assert src.read(1).tolist() == values.tolist()
        assert src.tags(1)["flag_masks"].split()[:3] == ["1", "6", "6"]


def test_item_with_classes_and_bitfields_validates_offline():
    spec = _spec("flood", "diagnostic")
    style = style_for("diagnostic", spec.attrs(), product="flood")
    water = style_for("water", _spec("flood", "water").attrs(), product="flood")
    assets = [
        stac_items.AssetFile(
            key=name,
            relpath=f"cog/flood/T/2024-01-01/{name}.tif",
            data=b"x",
            media_type=stac_items.COG_MEDIA_TYPE,
            roles=("data",),
            title=name,
            fields=stac_items.classification_fields(s),
        )
        for name, s in (("diagnostic", style), ("water", water))
    ]
    item = stac_items.build_item(
        product="flood",
        tile="T",
        label="2024-01-01",
        crs=CRS_UTM,
        transform=TRANSFORM,
        shape=(8, 8),
        assets=assets,
        sources=[],
        source_hrefs={},
        run_id="r",
        store_attrs={},
    )
    validate_stac(item)
    diag = item["assets"]["diagnostic"]["classification:bitfields"]
    # one one-bit field per mask of the SPEC, named by its meaning
    assert len(diag) == len(spec.flag_masks) and all(f["length"] == 1 for f in diag)
    by_offset = {f["offset"]: f["classes"][0]["name"] for f in diag}
    assert by_offset == {
        m.bit_length() - 1: n for m, n in zip(spec.flag_masks, spec.flag_meanings, strict=True)
    }
