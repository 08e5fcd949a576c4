"""Real data: Landsat 8 C2 L2 Greenland scene; our LST against the USGS ST_B10 on clear pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from geoproc.errors import UsageError
from geoproc.products import lst
from geoproc.products.lst.emissivity import SNOW_ICE, WATER
from geoproc.products.lst.landsat_c2 import load_landsat_c2_l2
from geoproc.products.lst.score import score

SCENE = "landsat-c2l2-greenland"
PREFIX = "LC08_L2SP_005009_20150710_20200908_02_T2"


@pytest.fixture(scope="module")
def scene(realdata):
    return load_landsat_c2_l2(realdata / SCENE, atmosphere="scene_mean")


@pytest.fixture(scope="module")
def clear(scene):
    return (scene.qa_clear & np.isfinite(scene.st_b10)).values


def test_loader_decodes_the_scene_with_mtl_constants(scene, realdata):
    folder = realdata / SCENE
    with rasterio.open(folder / f"{PREFIX}_ST_TRAD.TIF") as src:
        trad = src.read(1)
    y, x = np.argwhere(np.isfinite(scene.lwir11.values[0]))[0]
    radiance = trad[y, x] * 0.001
    assert float(scene.lwir11[0, y, x]) == pytest.approx(
        1321.0789 / np.log(774.8853 / radiance + 1), abs=1e-6
    )
    with rasterio.open(folder / f"{PREFIX}_ST_B10.TIF") as src:
        assert float(scene.st_b10[0, y, x]) == pytest.approx(
            src.read(1)[y, x] * 0.00341802 + 149.0, abs=1e-9
        )
    # scene-mean atmosphere is physical for a dry polar summer scene
    assert 0.9 < float(scene.atmos_transmittance_lwir11[0]) < 1.0
    assert 0.0 < float(scene.atmos_upwelling_lwir11[0]) < 0.5
    # reflectance scaled (2.75e-5, -0.2) and masked where QA says cloud
    assert 0.5 < float(scene.red.where(scene.qa_clear).median()) < 1.2
    cloud = (scene.fmask.values & (1 << 1)) > 0
    assert cloud.any() and np.isnan(scene.lwir11.values[cloud]).all()


def test_lst_within_1k_of_usgs_st_b10_on_clear_pixels(scene, clear):
    out = lst.run(scene)
    s = score(out.lst.values, scene.st_b10.values, mask=clear)
    # measured: RMSE 0.14 K, bias +0.14 K over 47,323 clear (non-shadow) pixels
    assert s["n"] > 40_000
    assert s["rmse"] < 1.0 and abs(s["bias"]) < 0.5
    assert (
        ((out.lst_qa.values >> lst.QA_METHOD_SHIFT) & 3)[clear & np.isfinite(out.lst.values)] == 1
    ).all()
    classes = ((out.lst_qa.values >> lst.QA_CLASS_SHIFT) & 7) - 1
    # the clear part of this scene is ice sheet: classified snow/ice, never bare soil
    assert np.isin(classes[clear & np.isfinite(out.lst.values)], [SNOW_ICE, WATER]).all()


def test_usgs_emissivity_isolates_the_emissivity_model_error(scene, clear):
    ours = score(lst.run(scene).lst.values, scene.st_b10.values, mask=clear)
    aster = score(
        lst.run(scene.assign(emissivity_lwir11=scene.st_emis)).lst.values,
        scene.st_b10.values,
        mask=clear,
    )
    # measured: RMSE 0.12 K with ST_EMIS (ASTER GED), so our emissivity adds ~0.02 K here
    assert aster["rmse"] < 1.0
    assert abs(ours["rmse"] - aster["rmse"]) < 0.1


def test_ndvi_thresholds_alone_would_fail_on_ice(scene, clear):
    """Bare-soil emissivity on ice (NDVI < 0.2 -> 0.973 - 0.047 red) is about 0.93: a bias of kelvins."""
    soil_eps = (0.973 - 0.047 * scene.red).where(scene.red < 1.2)
    wrong = score(lst.run(scene, emissivity=soil_eps).lst.values, scene.st_b10.values, mask=clear)
    assert wrong["bias"] > 1.0


def test_single_channel_with_a_dry_water_vapour_is_close_without_radiative_transfer(scene, clear):
    no_atm = scene.drop_vars([v for v in scene.data_vars if v.startswith("atmos_")])
    out = lst.run(no_atm, water_vapour=0.2)
    s = score(out.lst.values, scene.st_b10.values, mask=clear)
    assert s["rmse"] < 1.0
    assert (
        ((out.lst_qa.values >> lst.QA_METHOD_SHIFT) & 3)[np.isfinite(out.lst.values)] == 2
    ).all()


def test_loader_refuses_an_unknown_spacecraft(realdata, tmp_path):
    mtl = json.loads((realdata / SCENE / f"{PREFIX}_MTL.json").read_text())
    mtl["LANDSAT_METADATA_FILE"]["IMAGE_ATTRIBUTES"]["SPACECRAFT_ID"] = "LANDSAT_3"
    (tmp_path / "LM03_L2SP_MTL.json").write_text(json.dumps(mtl))
    with pytest.raises(UsageError, match="LANDSAT_5"):
        load_landsat_c2_l2(tmp_path)


def test_loader_errors_name_the_fix(tmp_path):
    with pytest.raises(UsageError, match="MTL.json"):
        load_landsat_c2_l2(tmp_path)
    with pytest.raises(UsageError, match="scene_mean"):
        load_landsat_c2_l2(tmp_path, atmosphere="hourly")
