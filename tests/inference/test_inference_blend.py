"""Blended windows: no seams for window-wide models, independent of block size, resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

from geoproc.dev.synthetic_cube import write_synthetic_cube
from geoproc.errors import UsageError
from geoproc.inference.blending import make_blend, ramp, window_starts
from geoproc.inference.card import OutputVariable, make_card, parse_card
from geoproc.inference.dask_runner import run_inference_dask
from geoproc.inference.engine import EngineOptions, run_inference
from geoproc.inference.kernel import ArrayKernel, ModelKernel
from geoproc.inference.markers import MARKER_DIR
from geoproc.products.base import VariableSpec
from tests.helpers.store_bytes import store_bytes

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

BANDS = ["blue", "green", "red", "nir08", "swir16", "swir22"]


class WindowMean(nn.Module):
    """Receptive field = the whole window: every pixel gets the window's mean of band 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1].mean(dim=(-2, -1), keepdim=True).expand(-1, -1, *x.shape[-2:])


def _kernel(halo: int = 2) -> ModelKernel:
    out = OutputVariable("score", (0,), "regression", "float32", "1", "window mean", np.nan)
    doc = make_card(
        name="window-mean", version="1", architecture="WindowMean", hyperparameters={},
        input_bands=BANDS, mean=[0.0] * 6, stddev=[1.0] * 6, halo=halo, outputs=[out],
        weights_href="none.safetensors", sha256="0" * 64, weights_size=0, total_parameters=0,
        framework_version="2",
    )  # fmt: skip
    return ModelKernel(parse_card(doc), module=WindowMean().eval())


@pytest.fixture(scope="module")
def cube_url(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("blend") / "cube.zarr")
    write_synthetic_cube(url, nt=1, ny=96, nx=96, chunks=(1, 32, 32), seed=5)
    return url


def _jumps(img: np.ndarray, edges: list[int]) -> tuple[float, float]:
    """Largest |step| between neighbouring pixels across block edges and inside blocks."""
    dx = np.abs(np.diff(img, axis=1))
    dy = np.abs(np.diff(img, axis=0))
    across = np.zeros(dx.shape[1], bool)
    across[[e - 1 for e in edges]] = True
    across_y = np.zeros(dy.shape[0], bool)
    across_y[[e - 1 for e in edges]] = True
    at_edges = max(np.nanmax(dx[:, across]), np.nanmax(dy[across_y]))
    inside = max(np.nanmax(dx[:, ~across]), np.nanmax(dy[~across_y]))
    return float(at_edges), float(inside)


def _run(cube_url: str, out: str, **options) -> np.ndarray:
    run_inference(cube_url, _kernel(), out, options=EngineOptions(**options))
    return xr.open_zarr(out).score.isel(time=0).values


def test_window_wide_model_has_seams_when_cropped_and_none_when_blended(cube_url, tmp_path):
    blocks = dict(window_chunks=1)  # 32 px blocks: edges at 32 and 64
    crop = _run(cube_url, str(tmp_path / "crop.zarr"), blend="none", **blocks)
    edge, inside = _jumps(crop, [32, 64])
    assert inside < 1e-6 and edge > 0.02  # constant per block, steps at the block edges

    for mode in ("linear", "cosine"):
        out = _run(cube_url, str(tmp_path / f"{mode}.zarr"), blend=mode, tile=32, overlap=16,
                   **blocks)  # fmt: skip
        edge_b, inside_b = _jumps(out, [32, 64])
        assert edge_b <= 1.05 * inside_b  # block edges look like any other pixel step
        assert edge_b < edge / 10
        # the blend does not depend on how the store is cut into blocks
        whole = _run(cube_url, str(tmp_path / f"{mode}-whole.zarr"), blend=mode, tile=32,
                     overlap=16, window_chunks=3)  # fmt: skip
        np.testing.assert_allclose(out, whole, atol=1e-6)
        masked = np.isnan(xr.open_zarr(cube_url).blue.isel(time=0).values)
        assert np.isnan(out[masked]).all() and np.isfinite(out[~masked]).all()


def test_blend_weights_and_lattice():
    for mode in ("linear", "cosine"):
        w = ramp(32, 8, mode)
        assert (w > 0).all() and np.allclose(w, w[::-1]) and (w[8:24] == 1).all()
        assert (np.diff(w[:8]) > 0).all()
    # from an inner edge: `margin` px of weight 0, then linear ramps summing to 1
    w = ramp(32, 12, "linear", margin=4)
    assert (w[:4] == 0).all() and (w[-4:] == 0).all() and (w[8:24] == 1).all()
    np.testing.assert_allclose(w[:12] + w[20:], 1.0)  # neighbour 20 px (32 - 12) away
    edge = ramp(32, 12, "linear", margin=4, start_border=True)
    assert (edge[:24] == 1).all() and edge[-1] == 0  # image border side: full weight
    assert window_starts(96, 32, 16) == (0, 16, 32, 48, 64)
    assert window_starts(100, 32, 16) == (0, 16, 32, 48, 64, 68)  # last flush with the edge
    assert window_starts(20, 32, 16) == (0,)
    with pytest.raises(UsageError, match="--overlap"):
        make_blend(96, 96, _kernel(), mode="linear", tile=32, overlap=32)
    with pytest.raises(UsageError, match="twice the model's halo"):
        make_blend(96, 96, _kernel(halo=4), mode="linear", tile=32, overlap=8)
    with pytest.raises(UsageError, match="--blend"):
        make_blend(96, 96, _kernel(), mode="gaussian")


class _Interrupt(Exception):
    pass


class _Crashing(ModelKernel):
    """Dies after a few forward passes, as a killed worker would."""

    calls = 0

    def forward(self, batch, **kw):
        type(self).calls += 1
        if type(self).calls > 6:
            raise _Interrupt
        return super().forward(batch, **kw)


def test_interrupted_blended_run_resumes_to_the_clean_bytes_and_dask_agrees(cube_url, tmp_path):
    opts = EngineOptions(blend="linear", tile=32, overlap=8, window_chunks=1,
                         batch_memory_bytes=200_000)  # fmt: skip
    clean, resumed, dasked = (str(tmp_path / n) for n in ("clean", "resumed", "dask"))
    run_inference(cube_url, _kernel(), clean, options=opts)
    crashing = _Crashing(_kernel().card, module=WindowMean().eval())
    with pytest.raises(_Interrupt):
        run_inference(cube_url, crashing, resumed, options=opts)
    finished = len(list((Path(resumed) / MARKER_DIR).iterdir())) - 1
    assert 0 < finished < 9
    stats = run_inference(cube_url, _kernel(), resumed, options=opts)
    assert stats.chunks_skipped == finished and stats.chunks_written == 9 - finished
    assert store_bytes(resumed) == store_bytes(clean)
    run_inference_dask(cube_url, _kernel(), dasked, options=opts)
    assert store_bytes(dasked) == store_bytes(clean)
    # another blend on the same store is refused: its bytes would differ
    with pytest.raises(Exception, match="another model"):
        run_inference(cube_url, _kernel(), clean, options=EngineOptions(blend="cosine", tile=32))


def test_numpy_kernels_blend_their_outputs(cube_url, tmp_path):
    def ndvi_and_class(batch):
        ndvi = (batch[:, 3] - batch[:, 2]) / (batch[:, 3] + batch[:, 2])
        return {"ndvi": ndvi, "veg": (ndvi > 0.3).astype(np.uint8)}

    kernel = ArrayKernel(
        ndvi_and_class, name="ndvi", version="1", inputs=tuple(BANDS),
        outputs=(VariableSpec("ndvi", "float32", "1", "NDVI", fill_value=float("nan")),
                 VariableSpec("veg", "uint8", "1", "vegetated", fill_value=255)),
    )  # fmt: skip
    plain, blended = str(tmp_path / "plain.zarr"), str(tmp_path / "blended.zarr")
    run_inference(cube_url, kernel, plain)
    run_inference(cube_url, kernel, blended, options=EngineOptions(blend="linear", tile=40))
    a, b = xr.open_zarr(plain), xr.open_zarr(blended, mask_and_scale=False)
    np.testing.assert_allclose(b.ndvi.values, a.ndvi.values, rtol=1e-6)  # per-pixel: unchanged
    np.testing.assert_array_equal(b.veg.values, xr.open_zarr(plain, mask_and_scale=False).veg)
