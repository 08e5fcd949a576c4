"""Device selection: CUDA chosen automatically when present, clear errors otherwise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geoproc.errors import UsageError
from geoproc.inference.device import DeviceOptions, autocast, select_device
from geoproc.inference.kernel import ModelKernel
from geoproc.inference.registry import find_card

HAS_CUDA = torch.cuda.is_available()


def test_auto_picks_cuda_when_present_else_cpu():
    device = select_device(DeviceOptions())
    assert device.type == ("cuda" if HAS_CUDA else "cpu")
    assert select_device(DeviceOptions(device="cpu")).type == "cpu"
    # autocast is a no-op on CPU so CPU results stay float32 and reproducible
    with autocast(torch.device("cpu"), "bfloat16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


@pytest.mark.skipif(HAS_CUDA, reason="checks the error raised on machines without a GPU")
def test_asking_for_cuda_without_a_gpu_says_what_to_use():
    with pytest.raises(UsageError, match="--device auto or --device cpu"):
        select_device(DeviceOptions(device="cuda"))


def test_unknown_device_name_is_a_usage_error():
    with pytest.raises(UsageError, match="cuda:N"):
        select_device(DeviceOptions(device="tpu-ish"))


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_cuda_results_match_cpu_and_bf16_stays_close():
    card = find_card("tiny-fcn")
    batch = np.random.default_rng(0).uniform(0, 0.4, (3, 6, 64, 64)).astype(np.float32)
    batch[0, 2, 10:20, 10:20] = np.nan
    cpu = ModelKernel(card, device=DeviceOptions(device="cpu"))(batch, seed=0)
    gpu_kernel = ModelKernel(card, device=DeviceOptions(device="cuda"))
    gpu = gpu_kernel(batch, seed=0)
    assert gpu_kernel.device.type == "cuda"
    np.testing.assert_allclose(gpu["water_probability"], cpu["water_probability"], atol=1e-4)
    assert np.isnan(gpu["water_probability"][0, 10:20, 10:20]).all()
    bf16 = ModelKernel(card, device=DeviceOptions(device="cuda", precision="bfloat16"))
    low = bf16(batch, seed=0)["water_probability"]
    np.testing.assert_allclose(low, cpu["water_probability"], atol=2e-2)
