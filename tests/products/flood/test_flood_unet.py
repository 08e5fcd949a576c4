"""The learned path: train on tiny Sen1Floods11-layout chips, load the card, predict a cube."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from geoproc.errors import ModelError, NoDataError, UsageError
from geoproc.products import flood
from geoproc.products.flood import train as flood_train
from geoproc.products.flood import unet as flood_unet
from geoproc.products.flood.score import score

rasterio = pytest.importorskip("rasterio")
N = 32


def _scene(rng: np.random.Generator, size: int = N) -> tuple[np.ndarray, np.ndarray]:
    """A random water blob (ellipse) and VV/VH dB with speckle-like noise."""
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(0, size, 2)
    ry, rx = rng.uniform(size / 6, size / 2.5, 2)
    water = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
    vv = np.where(water, -22.0, -9.0) + rng.normal(0, 1.5, (size, size))
    vh = np.where(water, -28.0, -16.0) + rng.normal(0, 1.5, (size, size))
    return water, np.stack([vv, vh]).astype(np.float32)


def _write(path, arr: np.ndarray, dtype: str) -> None:
    arr = arr if arr.ndim == 3 else arr[None]
    profile = {
        "driver": "GTiff",
        "width": arr.shape[2],
        "height": arr.shape[1],
        "count": arr.shape[0],
        "dtype": dtype,
        "crs": "EPSG:32633",
        "transform": rasterio.Affine(10, 0, 500000, 0, -10, 4000000),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr.astype(dtype))


@pytest.fixture(scope="module")
def chips(tmp_path_factory):
    root = tmp_path_factory.mktemp("sen1floods11")
    for sub in ("S1Hand", "S2Hand", "LabelHand"):
        (root / sub).mkdir()
    rng = np.random.default_rng(0)
    for i in range(16):
        water, s1 = _scene(rng)
        chip = f"Bolivia_{100000 + i}"
        label = water.astype(np.int16)
        label[:2, :] = -1  # a strip of no-data labels
        _write(root / "S1Hand" / f"{chip}_S1Hand.tif", s1, "float32")
        s2 = np.where(water, 300, 2500)[None].repeat(13, 0) + rng.integers(0, 100, (13, N, N))
        _write(root / "S2Hand" / f"{chip}_S2Hand.tif", s2, "int16")
        _write(root / "LabelHand" / f"{chip}_LabelHand.tif", label, "int16")
    return root


@pytest.fixture(scope="module")
def trained(chips, tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: one thread is fastest on a shared 2-core machine
    try:
        out = tmp_path_factory.mktemp("model")
        return flood_train.train(
            chips, out, epochs=12, batch_size=4, base_channels=8, seed=0, device="cpu"
        )
    finally:
        torch.set_num_threads(threads)


def test_read_chips_layout_and_bands(chips):
    ids, x, y = flood_train.read_chips(chips, bands=("vv", "vh", "nir08"))
    assert len(ids) == 16 and ids[0] == "Bolivia_100000"
    assert x.shape == (16, 3, N, N) and y.shape == (16, N, N)
    assert (y[:, :2] == -1).all()
    water = y[0] == 1
    assert x[0, 0][water].mean() < -18 and x[0, 0][~water & (y[0] == 0)].mean() > -12
    assert x[0, 2].max() < 0.3  # S2 numbers scaled to reflectance
    with pytest.raises(UsageError, match="LabelHand"):
        flood_train.read_chips(chips / "S1Hand")
    with pytest.raises(UsageError, match="not in S1Hand"):
        flood_train.read_chips(chips, bands=("lwir11",))


def test_training_learns_water_and_writes_card(trained):
    assert trained.n_train == 13 and trained.n_validation == 3
    assert trained.losses[-1] < 0.8 * trained.losses[0]
    assert trained.validation_iou > 0.8
    card = json.loads(trained.card_path.read_text())
    assert card["properties"]["mlm:architecture"] == "FloodUNet"
    assert [b for b in card["properties"]["mlm:input"][0]["bands"]] == ["vv", "vh"]
    assert trained.weights_path.stat().st_size == card["assets"]["weights"]["file:size"]


def test_unet_path_in_run_maps_a_cube_with_uncertainty(trained):
    rng = np.random.default_rng(42)
    waters, vv, vh = [], [], []
    for _ in range(2):
        w, s1 = _scene(rng, 64)
        waters.append(w)
        vv.append(10 ** (s1[0] / 10))  # the cube holds linear gamma0, as RTC does
        vh.append(10 ** (s1[1] / 10))
    vv = np.stack(vv)
    vv[1, :4, :4] = np.nan
    ds = xr.Dataset(
        {"vv": (("time", "y", "x"), vv), "vh": (("time", "y", "x"), np.stack(vh))},
        coords={"time": pd.date_range("2024-05-01", periods=2, freq="6D")},
    )
    out = flood.run(
        ds,
        algorithm="unet",
        model=str(trained.card_path),
        mc_samples=4,
        reference=np.zeros((64, 64)),
    )
    truth = np.stack(waters).astype(np.uint8) * 2
    s = score(out, truth)
    assert s["overall"]["water"]["iou"] > 0.8
    assert (out.water.values[1, :4, :4] == 255).all()
    assert (out.water_source.values[0] == 4 | 2).all()
    u = out.uncertainty.values[0]
    edge = waters[0] ^ np.roll(waters[0], 1, axis=0)
    assert np.nanmean(u[edge]) > np.nanmean(u[~edge])
    again = flood.run(
        ds,
        algorithm="unet",
        model=str(trained.card_path),
        mc_samples=4,
        reference=np.zeros((64, 64)),
    )
    np.testing.assert_array_equal(out.water_probability.values, again.water_probability.values)


def test_tampered_weights_and_missing_bands_are_refused(trained, tmp_path):
    import shutil

    card = tmp_path / trained.card_path.name
    shutil.copy(trained.card_path, card)
    blob = bytearray(trained.weights_path.read_bytes())
    blob[-1] ^= 0xFF
    (tmp_path / trained.weights_path.name).write_bytes(bytes(blob))
    with pytest.raises(ModelError, match="sha256"):
        flood_unet.load(card)
    model = flood_unet.load(trained.card_path)
    ds = xr.Dataset({"red": (("y", "x"), np.zeros((8, 8), np.float32))})
    with pytest.raises(UsageError, match="vv"):
        model.predict_step(ds)
    with pytest.raises(UsageError, match="does not exist"):
        flood_unet.load(tmp_path / "nope.json")


def test_empty_chip_folder_is_no_data(tmp_path):
    (tmp_path / "LabelHand").mkdir()
    with pytest.raises(NoDataError):
        flood_train.read_chips(tmp_path)


def test_train_cli_writes_a_loadable_card(chips, tmp_path):
    from geoproc.cli import main

    out = tmp_path / "cli-model"
    assert (
        main(
            [
                "train",
                "flood",
                "--chips",
                str(chips),
                "--out",
                str(out),
                "--epochs",
                "1",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    cards = list(out.glob("*.json"))
    weights = list(out.glob("*.safetensors"))
    assert len(cards) == 1 and len(weights) == 1
    card = json.loads(cards[0].read_text())
    assert card["properties"]["mlm:framework"] == "PyTorch"
    from geoproc.products.flood import unet as flood_unet

    assert flood_unet.load(cards[0], device="cpu") is not None
