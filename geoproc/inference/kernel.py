"""Kernels: what the engine runs on each window, a torch model or a numpy function alike.

Why one interface: the engine only needs to know which bands a method reads, how much
context (halo) it needs, whether it maps one scene or a whole series, and which CF
variables it writes. A torch model with its MLM card is one kernel (``ModelKernel``); a
per-pixel product function is another (``ArrayKernel``). Masked input (NaN) always gives
the variable's fill value at that pixel, never a guess.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import torch

from geoproc.inference.card import ModelCard
from geoproc.inference.device import DeviceOptions, autocast, configure_torch, select_device
from geoproc.products.base import VariableSpec

Temporal = Literal["scene", "series"]


@runtime_checkable
class Kernel(Protocol):
    """Maps a batch of windows to output arrays.

    ``batch`` is float32, NaN where masked, shaped (B, C, H, W) for ``scene`` kernels or
    (B, C, T, H, W) for ``series`` kernels, channels in ``inputs`` order. The result maps
    each output name to a (B, H, W) array of that variable's dtype, fill where masked.
    """

    name: str
    version: str
    inputs: tuple[str, ...]
    outputs: tuple[VariableSpec, ...]
    halo: int
    temporal: Temporal
    bytes_per_pixel: int
    """Working memory per window pixel (inputs + activations), for batch sizing."""

    def provenance(self) -> dict[str, str]: ...

    def __call__(self, batch: np.ndarray, *, seed: int) -> dict[str, np.ndarray]: ...


def valid_mask(batch: np.ndarray, temporal: Temporal) -> np.ndarray:
    """(B, H, W) True where a pixel has usable data.

    ``scene``: every band valid. ``series``: at least one time step with every band valid.
    """
    finite = np.isfinite(batch).all(axis=1)
    return finite.any(axis=1) if temporal == "series" else finite


def fill_masked(values: np.ndarray, valid: np.ndarray, spec: VariableSpec) -> np.ndarray:
    """Cast to the variable dtype and put its fill value wherever input was masked."""
    fill = spec.fill_value if spec.fill_value is not None else np.nan
    with np.errstate(invalid="ignore"):
        return np.where(valid, values, fill).astype(spec.dtype, copy=False)


class ModelKernel:
    """A torch model and its card as a kernel; pickles as a reference, not as tensors.

    On unpickling (a Dask worker) the module is fetched from the per-process registry
    cache, so each worker process builds each model once.
    """

    def __init__(
        self,
        card: ModelCard,
        *,
        source: str | None = None,
        device: DeviceOptions | None = None,
        module: torch.nn.Module | None = None,
        inputs: tuple[str, ...] | None = None,
    ) -> None:
        """``inputs``: the cube variables to read for the card's bands, in card order
        (default: the card's band names)."""
        self.card = card
        self.source = source
        self.device_options = device or DeviceOptions()
        self.name = card.name
        self.version = card.version
        self.inputs = tuple(inputs) if inputs is not None else card.input_bands
        self.outputs = tuple(o.variable_spec() for o in card.outputs)
        self.halo = card.halo
        self.temporal: Temporal = card.temporal
        self.tile_size = card.tile_size
        width = int(card.hyperparameters.get("width", 32))
        self.bytes_per_pixel = card.bytes_per_pixel or 4 * (2 * len(self.inputs) + 4 * width)
        self._module = module
        self._device: torch.device | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_module"] = None
        state["_device"] = None
        return state

    @property
    def device(self) -> torch.device:
        self._ensure_ready()
        assert self._device is not None
        return self._device

    def provenance(self) -> dict[str, str]:
        return {
            "model_name": self.card.name,
            "model_version": self.card.version,
            "model_sha256": self.card.sha256,
            "model_architecture": self.card.architecture,
            "model_framework": f"PyTorch {self.card.framework_version}",
            "model_halo": str(self.halo),
            # a resumed store must have been started with the same bands in the same order
            # and the same arithmetic, or it would mix chunks computed two ways
            "model_inputs": ",".join(self.inputs),
            "model_precision": self.device_options.precision,
        }

    def _ensure_ready(self) -> torch.nn.Module:
        if self._device is None:
            self._device = select_device(self.device_options)
            configure_torch(self.device_options, self._device)
        if self._module is None:
            from geoproc.inference.registry import load_from_card

            self._module = load_from_card(self.card, source=self.source).module
        if self._device.type != "cpu":
            self._module = _on_device(self.card, self._module, self._device)
        return self._module

    def forward(self, batch: np.ndarray, *, stochastic: bool = False, seed: int = 0) -> np.ndarray:
        """Raw model channels (B, K, H, W) float32 for a NaN-masked batch.

        Masked values are replaced by the band mean (0 after z-scoring) so they add no
        signal; their outputs are discarded later. ``stochastic`` keeps dropout active
        (MC dropout) with a fixed seed so reruns give the same bytes.
        """
        module = self._ensure_ready()
        tensor = self._normalised(batch).to(self._device, non_blocking=True)
        module.train(stochastic)
        try:
            if stochastic:
                torch.manual_seed(seed)
            with torch.inference_mode(), autocast(self._device, self.device_options.precision):
                y = module(tensor)
        finally:
            module.train(False)
        return y.float().cpu().numpy()

    def _normalised(self, batch: np.ndarray) -> torch.Tensor:
        """The card's z-score with NaN/inf -> 0, as a new CPU float32 tensor.

        Why torch: the same float32 subtract, divide and replace as ``card.normalise`` and
        ``np.nan_to_num`` (so the same bytes), on torch's threads instead of one numpy
        thread, without the intermediate copies."""
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        shape = (1, -1) + (1,) * (x.dim() - 2)
        mean = torch.tensor(self.card.mean, dtype=torch.float32).reshape(shape)
        std = torch.tensor(self.card.stddev, dtype=torch.float32).reshape(shape)
        with torch.inference_mode():
            out = torch.sub(x, mean)
            out.div_(std)
            return torch.nan_to_num_(out, nan=0.0, posinf=0.0, neginf=0.0)

    def outputs_from_channels(self, y: np.ndarray, valid: np.ndarray) -> dict[str, np.ndarray]:
        """Turn raw channels into the card's variables, fill where input was masked."""
        result = {}
        for out, spec in zip(self.card.outputs, self.outputs, strict=True):
            if out.kind == "classification":
                index = _argmax_channels(y, list(out.channels))
                values = np.asarray([v for v, _ in out.classes])[index]
            else:
                values = y[:, out.channels[0]]
            result[out.name] = fill_masked(values, valid, spec)
        return result

    def __call__(self, batch: np.ndarray, *, seed: int) -> dict[str, np.ndarray]:
        valid = valid_mask(batch, self.temporal)
        return self.outputs_from_channels(self.forward(batch), valid)


def _argmax_channels(y: np.ndarray, channels: list[int]) -> np.ndarray:
    """``y[:, channels].argmax(axis=1)``, one pass per channel over contiguous planes
    instead of numpy's strided reduction (~3x faster here), with numpy's rules: the first
    maximum wins, and the first NaN counts as the maximum."""
    best = y[:, channels[0]]
    index = np.zeros(best.shape, dtype=np.intp)
    for k, c in enumerate(channels[1:], start=1):
        cand = y[:, c]
        with np.errstate(invalid="ignore"):
            better = (cand > best) | (np.isnan(cand) & ~np.isnan(best))
        index[better] = k
        best = np.where(better, cand, best)
    return index


_DEVICE_MODULES: dict[tuple[str, str, str], torch.nn.Module] = {}
_DEVICE_LOCK = threading.Lock()


def _on_device(card: ModelCard, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """One copy of each model per accelerator per process; the cached CPU module stays put."""
    first = next(module.parameters(), None)
    if first is None or first.device == device:
        return module
    key = (card.name, card.sha256, str(device))
    with _DEVICE_LOCK:
        if key not in _DEVICE_MODULES:
            _DEVICE_MODULES[key] = copy.deepcopy(module).to(device).eval()
        return _DEVICE_MODULES[key]


class ArrayKernel:
    """A numpy function as a kernel (per-pixel products, or any window function).

    ``func(batch) -> {name: (B, H, W) array}``; masking is applied here, so ``func`` may
    return anything where input was NaN.
    """

    def __init__(
        self,
        func: Callable[[np.ndarray], dict[str, np.ndarray]],
        *,
        name: str,
        version: str,
        inputs: tuple[str, ...],
        outputs: tuple[VariableSpec, ...],
        halo: int = 0,
        temporal: Temporal = "scene",
    ) -> None:
        self.func = func
        self.name = name
        self.version = version
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.halo = halo
        self.temporal: Temporal = temporal
        self.bytes_per_pixel = 4 * (2 * len(self.inputs) + 2 * len(self.outputs))

    def provenance(self) -> dict[str, str]:
        return {"algorithm_name": self.name, "algorithm_version": self.version}

    def __call__(self, batch: np.ndarray, *, seed: int) -> dict[str, np.ndarray]:
        valid = valid_mask(batch, self.temporal)
        with np.errstate(invalid="ignore", divide="ignore"):
            raw = self.func(batch)
        return {spec.name: fill_masked(raw[spec.name], valid, spec) for spec in self.outputs}
