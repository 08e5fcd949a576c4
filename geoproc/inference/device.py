"""Where and how the forward pass runs: device choice, autocast, CPU threads, determinism.

Why: the same code must use a GPU when one is present (optionally in bf16/fp16 via
``torch.autocast``, https://pytorch.org/docs/stable/amp.html) and give bit-identical
results on CPU across reruns (``torch.use_deterministic_algorithms``,
https://pytorch.org/docs/stable/notes/randomness.html), so resumed runs match clean ones.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Literal

import torch

from geoproc.errors import UsageError

Precision = Literal["float32", "bfloat16", "float16"]


@dataclass(frozen=True)
class DeviceOptions:
    """How to run the forward pass."""

    device: str = "auto"
    """`auto` (CUDA when available, else CPU), `cpu`, `cuda` or `cuda:N`."""
    precision: Precision = "float32"
    """Autocast dtype on CUDA; CPU always runs float32 so results are reproducible."""
    threads: int | None = None
    """CPU threads for torch (default: leave torch's own choice, which honours
    OMP_NUM_THREADS as Dask workers set it)."""
    deterministic: bool = True
    """Deterministic CUDA kernels (CPU results are reproducible for a fixed thread count)."""


def select_device(options: DeviceOptions | None = None, *, worker_index: int = 0) -> torch.device:
    """The best device for this process: one GPU per worker (round robin), else CPU."""
    options = options or DeviceOptions()
    wanted = options.device
    if wanted == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", worker_index % torch.cuda.device_count())
        return torch.device("cpu")
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(
            f"device {wanted!r} was requested but no CUDA GPU is visible; "
            "use --device auto or --device cpu"
        )
    try:
        return torch.device(wanted)
    except RuntimeError:
        raise UsageError(f"unknown device {wanted!r}; use auto, cpu, cuda or cuda:N") from None


def configure_torch(
    options: DeviceOptions | None = None, device: torch.device | None = None
) -> None:
    """Set CPU threads and, on CUDA, deterministic kernels for this process (idempotent).

    On CPU, ``torch.use_deterministic_algorithms`` is not cheap: it swaps oneDNN
    convolutions for slow reference kernels (6x slower measured on the reference model).
    CPU convolutions are already bit-reproducible for a fixed thread count and batch
    shape, which the engine's fixed batch plan guarantees, so it is only used on CUDA,
    where atomics make some kernels vary between runs.
    """
    options = options or DeviceOptions()
    if options.threads and torch.get_num_threads() != options.threads:
        torch.set_num_threads(options.threads)
    if options.deterministic and device is not None and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA when asked; a no-op elsewhere."""
    if device.type == "cuda" and precision != "float32":
        return torch.autocast("cuda", dtype=getattr(torch, precision))
    return contextlib.nullcontext()
