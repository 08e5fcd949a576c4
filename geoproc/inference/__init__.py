"""Chunked inference: model cards and registry, the Zarr -> Zarr engine, Dask scale-out.

Typical use::

    from geoproc.inference import EngineOptions, ModelKernel, find_card, run_inference

    kernel = ModelKernel(find_card("tiny-fcn"))          # card + verified safetensors
    run_inference("s3://bucket/cube.zarr", kernel, "s3://bucket/product.zarr")

``run_inference_dask`` runs the same plan as Dask tasks (same bytes); wrap a model in
``MCDropoutKernel`` or ``EnsembleKernel`` for mean + spread outputs; wrap a numpy
function in ``ArrayKernel`` to stream a per-pixel product through the same engine.
"""

from geoproc.inference.card import ModelCard, OutputVariable, make_card, parse_card
from geoproc.inference.dask_runner import run_inference_dask
from geoproc.inference.device import DeviceOptions
from geoproc.inference.engine import EngineOptions, RunStats, run_inference
from geoproc.inference.kernel import ArrayKernel, Kernel, ModelKernel
from geoproc.inference.registry import find_card, list_models, load_model
from geoproc.inference.uncertainty import EnsembleKernel, MCDropoutKernel

__all__ = [
    "ArrayKernel",
    "DeviceOptions",
    "EngineOptions",
    "EnsembleKernel",
    "Kernel",
    "MCDropoutKernel",
    "ModelCard",
    "ModelKernel",
    "OutputVariable",
    "RunStats",
    "find_card",
    "list_models",
    "load_model",
    "make_card",
    "parse_card",
    "run_inference",
    "run_inference_dask",
]
