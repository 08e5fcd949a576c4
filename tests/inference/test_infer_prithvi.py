"""Foundation-model path: a small random Prithvi-EO-2.0-style model, saved locally, through
`geoproc infer` on an HLS-like cube (6 bands, 3 dates). No download anywhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from geoproc import zarr_layout
from geoproc.cli import main
from geoproc.dev.synthetic_cube import synthetic_cube
from geoproc.inference.models.prithvi_card import HLS_BANDS, write_model
from geoproc.inference.models.prithvi_model import PrithviSegmenter, convert_checkpoint
from geoproc.storage import zarr_store

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

HP = {"in_chans": 6, "num_frames": 3, "img_size": 32, "patch_size": [1, 8, 8], "embed_dim": 32,
      "depth": 2, "num_heads": 2, "head_channels": 8}  # fmt: skip
MEAN = [0.10, 0.15, 0.20, 0.25, 0.30, 0.35]
STD = [0.02, 0.03, 0.04, 0.05, 0.06, 0.07]


@pytest.fixture(scope="module")
def model_card(tmp_path_factory):
    torch.manual_seed(7)
    model = PrithviSegmenter(n_classes=2, **HP).eval()
    folder = tmp_path_factory.mktemp("prithvi")
    card = write_model(folder, model.state_dict(), hyperparameters=HP, mean=MEAN, stddev=STD,
                       classes=("land", "water"), name="prithvi-tiny")  # fmt: skip
    return card, model


def _write(ds: xr.Dataset, url: str) -> None:
    stored = zarr_layout.with_compressor(zarr_layout.gdal_readable(ds))
    stored.to_zarr(zarr_store(url), mode="w", **zarr_layout.to_zarr_kwargs())


def test_prithvi_segmenter_runs_through_geoproc_infer_and_keeps_masks(model_card, tmp_path):
    card, _ = model_card
    ds = synthetic_cube(nt=3, ny=80, nx=72, chunks=(1, 32, 32), masked_fraction=0.0, seed=4)
    bands = {b: ds[b].values.copy() for b in HLS_BANDS}
    for b in HLS_BANDS:  # the synthetic clouds, plus:
        bands[b][:, 10:20, 40:52] = np.nan  # every band, every date: masked
        bands[b][:2, 60:70, 5:15] = np.nan  # clear on the last date only: valid
    bands["swir22"][:, 30:34, 30:34] = np.nan  # one band missing at every date: masked
    for b in HLS_BANDS:
        ds[b].values[:] = bands[b]
    cube, out = str(tmp_path / "hls.zarr"), str(tmp_path / "seg.zarr")
    _write(ds, cube)

    assert main(["infer", "--model", str(card), "--cube", cube, "--out", out,
                 "--device", "cpu"]) == 0  # fmt: skip
    product = xr.open_zarr(out, mask_and_scale=False)
    assert product["class"].dims == ("y", "x") and product.sizes == {"y": 80, "x": 72}
    np.testing.assert_array_equal(product.x.values, ds.x.values)
    np.testing.assert_array_equal(product.y.values, ds.y.values)
    stored = xr.open_zarr(out)
    assert stored.rio.crs.to_epsg() == 32633 and stored.rio.transform() == ds.rio.transform()
    assert stored.attrs["model_architecture"] == "PrithviSegmenter"
    assert '"blend": "linear"' in stored.attrs["engine_parameters"]
    import rasterio  # GDAL's Zarr driver sees the same grid (zarr_layout)

    with rasterio.open(f'ZARR:"{out}":/water_logit') as src:
        assert src.crs.to_epsg() == 32633 and src.transform == ds.rio.transform()
        assert src.shape == (80, 72)

    stack = np.stack([bands[b] for b in HLS_BANDS])  # (C, T, y, x)
    masked = ~np.isfinite(stack).all(axis=0).any(axis=0)
    assert masked[15, 45] and masked[31, 31] and not masked[65, 10]
    cls, logit = product["class"].values, product["water_logit"].values
    assert (cls[masked] == 255).all() and np.isnan(logit[masked]).all()
    assert np.isin(cls[~masked], [0, 1]).all() and np.isfinite(logit[~masked]).all()
    assert logit[~masked].std() > 1e-3  # the map varies: not a constant guess


def test_one_window_equals_the_model_on_the_normalised_series(model_card, tmp_path):
    """Band order, z-score, time axis: the engine feeds the model what its card says."""
    card, model = model_card
    ds = synthetic_cube(nt=3, ny=32, nx=32, chunks=(1, 16, 16), masked_fraction=0.0, seed=9)
    cube, out = str(tmp_path / "one.zarr"), str(tmp_path / "one-out.zarr")
    _write(ds, cube)
    assert main(["infer", "--model", str(card), "--cube", cube, "--out", out]) == 0
    x = np.stack([ds[b].values for b in HLS_BANDS]).astype(np.float32)  # (C, T, y, x)
    x = (x - np.array(MEAN, np.float32)[:, None, None, None]) / np.array(STD, np.float32)[
        :, None, None, None
    ]
    x = np.nan_to_num(x, nan=0.0)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)[None]).numpy()[0]
    valid = np.isfinite(np.stack([ds[b].values for b in HLS_BANDS])).all(0).any(0)
    logit = xr.open_zarr(out).water_logit.values
    np.testing.assert_allclose(logit[valid], ref[1][valid], atol=1e-4)
    cls = xr.open_zarr(out, mask_and_scale=False)["class"].values
    sure = valid & (np.abs(ref[1] - ref[0]) > 1e-3)
    np.testing.assert_array_equal(cls[sure], (ref[1] > ref[0])[sure].astype(np.uint8))


def test_published_checkpoint_layout_converts_and_loads_strictly(tmp_path):
    """A .pt laid out like the published MAE (encoder.* + decoder.*) keeps its encoder."""
    torch.manual_seed(3)
    donor = PrithviSegmenter(n_classes=2, **HP)
    mae = {k: v for k, v in donor.state_dict().items() if k.startswith("encoder.")}
    mae["decoder.mask_token"] = torch.zeros(1, 1, 16)
    mae["decoder.decoder_embed.weight"] = torch.zeros(16, 32)
    path = tmp_path / "Prithvi_like.pt"
    torch.save(mae, path)
    state = convert_checkpoint(path, n_classes=2, **HP)
    assert not any(k.startswith("decoder.") for k in state)
    fresh = PrithviSegmenter(n_classes=2, **HP)
    fresh.load_state_dict(state, strict=True)
    for k, v in mae.items():
        if k.startswith("encoder."):
            assert torch.equal(fresh.state_dict()[k], v), k


def _store_bytes(url: str) -> dict[str, bytes]:
    from pathlib import Path

    root = Path(url)
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "_geoproc_done" not in p.parts
    }


@pytest.mark.slow  # three CLI processes (torch import each): ~50 s on the 2-core machine
def test_killed_geoproc_infer_rerun_gives_the_clean_bytes(model_card, tmp_path):
    """SIGKILL mid-run (blended ViT, 1-chunk blocks), rerun the same command: same bytes."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from tests.helpers.paths import REPO_ROOT

    card, _ = model_card
    ds = synthetic_cube(nt=3, ny=128, nx=128, chunks=(1, 32, 32), seed=6)
    cube = str(tmp_path / "cube.zarr")
    _write(ds, cube)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}

    def cli(out: str) -> subprocess.Popen:
        argv = [sys.executable, "-W", "ignore", "-m", "geoproc", "infer", "--model", str(card),
                "--cube", cube, "--out", out, "--batch-mb", "1", "--device", "cpu"]  # fmt: skip
        return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)

    clean, killed = str(tmp_path / "clean.zarr"), str(tmp_path / "killed.zarr")
    assert cli(clean).wait() == 0
    markers = Path(killed) / "_geoproc_done"
    for _attempt in range(3):  # on a loaded machine the child can finish before the kill lands
        shutil.rmtree(killed, ignore_errors=True)
        proc = cli(killed)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if markers.is_dir() and len(list(markers.iterdir())) >= 4:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        finished = len(list(markers.iterdir())) - 1 if markers.is_dir() else 0
        if 0 < finished < 16:
            break
    assert 0 < finished < 16, "the child must be killed mid-run"
    assert cli(killed).wait() == 0
    assert _store_bytes(killed) == _store_bytes(clean)
    assert len(list(markers.iterdir())) == 1 + 16
