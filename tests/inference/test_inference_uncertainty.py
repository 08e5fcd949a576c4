"""MC dropout and ensembles: mean and spread per pixel, nodata where masked, reruns identical."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from geoproc.dev.synthetic_cube import write_synthetic_cube
from geoproc.errors import UsageError
from geoproc.inference.engine import EngineOptions, run_inference
from geoproc.inference.kernel import ModelKernel
from geoproc.inference.registry import find_card
from geoproc.inference.uncertainty import EnsembleKernel, MCDropoutKernel
from tests.helpers.store_bytes import store_bytes

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
OPTIONS = EngineOptions(batch_memory_bytes=2_000_000)


@pytest.fixture(scope="module")
def cube_url(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("cube") / "cube.zarr")
    write_synthetic_cube(url, nt=1, ny=64, nx=48, chunks=(1, 32, 32), seed=7)
    return url


def test_mc_dropout_mean_and_spread_are_reproducible(cube_url, tmp_path):
    model = ModelKernel(find_card("tiny-fcn"))
    mc = MCDropoutKernel(model, passes=6)
    a, b = str(tmp_path / "a.zarr"), str(tmp_path / "b.zarr")
    run_inference(cube_url, mc, a, options=OPTIONS)
    run_inference(cube_url, mc, b, options=OPTIONS)
    assert store_bytes(a) == store_bytes(b)  # fixed seeds per batch: reruns give the same bytes

    out = xr.open_zarr(a, mask_and_scale=False).isel(time=0)
    assert set(out.data_vars) == {
        "water_probability_mean",
        "water_probability_std",
        "surface_class",
        "surface_class_std",
    }
    cube = xr.open_zarr(cube_url).isel(time=0)
    masked = np.isnan(np.stack([cube[v].values for v in model.inputs])).any(0)
    mean, std = out.water_probability_mean.values, out.water_probability_std.values
    assert np.isnan(mean[masked]).all() and np.isnan(std[masked]).all()
    assert (out.surface_class.values[masked] == 255).all()
    assert np.isfinite(mean[~masked]).all() and (mean[~masked] >= 0).all()
    assert np.median(std[~masked]) > 1e-4  # dropout really samples
    det = str(tmp_path / "det.zarr")
    run_inference(cube_url, model, det, options=OPTIONS)
    single = xr.open_zarr(det).water_probability.isel(time=0).values
    assert np.nanmax(np.abs(single - mean)) > 1e-4  # the mean is not the deterministic pass
    assert np.nanmax(np.abs(single - mean)) < 0.5


def test_ensemble_of_identical_models_has_zero_spread(cube_url, tmp_path):
    card = find_card("tiny-fcn")
    ens = EnsembleKernel([ModelKernel(card), ModelKernel(card)])
    out_url = str(tmp_path / "e.zarr")
    run_inference(cube_url, ens, out_url, options=OPTIONS)
    det = str(tmp_path / "d.zarr")
    run_inference(cube_url, ModelKernel(card), det, options=OPTIONS)
    out, single = xr.open_zarr(out_url), xr.open_zarr(det)
    np.testing.assert_allclose(
        out.water_probability_mean.values, single.water_probability.values, atol=1e-6
    )
    std = out.water_probability_std.values
    assert np.nanmax(std) <= 1e-6 and np.isnan(std).any()


def test_uncertainty_options_are_checked():
    model = ModelKernel(find_card("tiny-fcn"))
    with pytest.raises(UsageError, match="passes"):
        MCDropoutKernel(model, passes=1)
    with pytest.raises(UsageError, match="2 models"):
        EnsembleKernel([model])
