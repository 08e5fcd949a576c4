"""Model cards: a STAC Item with the Machine Learning Model extension (MLM v1.5.2).

Why a STAC Item: catalogs, registries and humans already read it, and the MLM extension
(https://github.com/stac-extensions/mlm, v1.5.2) has fields for everything the engine
needs: input bands and their normalisation (``value_scaling``), output shape, type and
class meanings (``classification:classes``), framework and version, the architecture name
and hyperparameters. What MLM has no field for lives under the ``geoproc:`` prefix:
``geoproc:halo`` (pixels of context, >= receptive-field radius), ``geoproc:temporal``
(``scene`` or ``series``), optionally ``geoproc:tile_size`` (the window side a model with a
fixed input size, e.g. a ViT, was trained on; blended inference uses it) and
``geoproc:bytes_per_pixel`` (working memory per input pixel, for batch sizing), and
per-output CF metadata (units, long_name, fill value).
The weights asset carries ``file:checksum`` (a sha2-256 multihash, file extension v2.1.0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from geoproc.errors import ModelError
from geoproc.products.base import VariableSpec

MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.5.2/schema.json"
FILE_SCHEMA = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
CLASSIFICATION_SCHEMA = "https://stac-extensions.github.io/classification/v1.1.0/schema.json"
EO_SCHEMA = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
VERSION_SCHEMA = "https://stac-extensions.github.io/version/v1.2.0/schema.json"
_SHA256_MULTIHASH_PREFIX = "1220"


@dataclass(frozen=True)
class OutputVariable:
    """One product variable made from a slice of the model's output channels."""

    name: str
    channels: tuple[int, ...]
    """Model output channels it comes from (one for regression, one per class otherwise)."""
    kind: Literal["regression", "classification"]
    dtype: str
    units: str
    long_name: str
    fill_value: float | int
    classes: tuple[tuple[int, str], ...] = ()
    """(value, name) per class; class ``i`` is the argmax over ``channels[i]``."""

    def variable_spec(self) -> VariableSpec:
        """CF description for the product store."""
        return VariableSpec(
            name=self.name,
            dtype=self.dtype,
            units=self.units,
            long_name=self.long_name,
            fill_value=self.fill_value,
            flag_values=tuple(v for v, _ in self.classes) or None,
            flag_meanings=tuple(n for _, n in self.classes) or None,
        )


@dataclass(frozen=True)
class ModelCard:
    """The parts of an MLM card the engine uses, parsed and checked once."""

    name: str
    version: str
    architecture: str
    hyperparameters: dict[str, Any]
    input_bands: tuple[str, ...]
    """Common band names, in channel order."""
    mean: tuple[float, ...]
    stddev: tuple[float, ...]
    halo: int
    temporal: Literal["scene", "series"]
    outputs: tuple[OutputVariable, ...]
    weights_href: str
    sha256: str
    framework_version: str
    raw: dict = field(repr=False, compare=False, default_factory=dict)
    tile_size: int | None = None
    """Window side the model expects (None: any size)."""
    bytes_per_pixel: int | None = None
    """Working memory per window pixel, when the card states it."""

    @property
    def key(self) -> str:
        """``name@version``: how users name a model."""
        return f"{self.name}@{self.version}"

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """Apply the card's z-score along the channel axis (axis 1)."""
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(shape)
        std = np.asarray(self.stddev, dtype=np.float32).reshape(shape)
        return (x - mean) / std


def parse_card(doc: dict) -> ModelCard:
    """Read a card dict; a missing or malformed field raises ModelError naming it."""
    try:
        props = doc["properties"]
        (inp,) = props["mlm:input"]
        bands = tuple(b if isinstance(b, str) else b["name"] for b in inp["bands"])
        scaling = inp.get("value_scaling") or [
            {"type": "z-score", "mean": 0.0, "stddev": 1.0} for _ in bands
        ]
        if len(scaling) != len(bands) or any(s["type"] != "z-score" for s in scaling):
            raise ModelError(
                f"card {doc.get('id')!r}: value_scaling must hold one z-score entry per band "
                f"({len(bands)}); fix mlm:input[0].value_scaling"
            )
        outputs = tuple(_parse_output(o) for o in props["mlm:output"])
        weights = [a for a in doc["assets"].values() if "mlm:model" in a.get("roles", [])]
        if len(weights) != 1:
            raise ModelError(
                f"card {doc.get('id')!r} needs exactly one asset with role 'mlm:model'; "
                f"found {len(weights)}"
            )
        (asset,) = weights
        if asset.get("mlm:artifact_type") != "safetensors.torch.save_file":
            raise ModelError(
                f"card {doc.get('id')!r}: weights must be safetensors "
                f"(mlm:artifact_type 'safetensors.torch.save_file'), "
                f"got {asset.get('mlm:artifact_type')!r}; convert the weights to safetensors"
            )
        checksum = asset["file:checksum"]
        if not checksum.startswith(_SHA256_MULTIHASH_PREFIX) or len(checksum) != 68:
            raise ModelError(
                f"card {doc.get('id')!r}: file:checksum must be a sha2-256 multihash "
                f"('1220' + 64 hex digits), got {checksum!r}"
            )
        return ModelCard(
            name=props["mlm:name"],
            version=str(props["version"]),
            architecture=props["mlm:architecture"],
            hyperparameters=dict(props.get("mlm:hyperparameters") or {}),
            input_bands=bands,
            mean=tuple(float(s["mean"]) for s in scaling),
            stddev=tuple(float(s["stddev"]) for s in scaling),
            halo=int(props["geoproc:halo"]),
            temporal=props.get("geoproc:temporal", "scene"),
            outputs=outputs,
            weights_href=asset["href"],
            sha256=checksum[len(_SHA256_MULTIHASH_PREFIX) :].lower(),
            framework_version=props.get("mlm:framework_version", ""),
            raw=doc,
            tile_size=_opt_int(props.get("geoproc:tile_size")),
            bytes_per_pixel=_opt_int(props.get("geoproc:bytes_per_pixel")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(
            f"model card {doc.get('id', '?')!r} is missing or has a malformed field ({exc!r}); "
            "fix the card JSON (see geoproc/inference/card.py for the fields used)"
        ) from None


def _parse_output(o: dict) -> OutputVariable:
    classes = tuple((int(c["value"]), c["name"]) for c in o.get("classification:classes") or [])
    return OutputVariable(
        name=o["name"],
        channels=tuple(int(c) for c in o["geoproc:channels"]),
        kind="classification" if classes else "regression",
        dtype=o["result"]["data_type"],
        units=o.get("geoproc:units", "1"),
        long_name=o.get("geoproc:long_name", o.get("description", o["name"])),
        fill_value=_fill(o["geoproc:fill_value"]),
        classes=classes,
    )


def make_card(
    *,
    name: str,
    version: str,
    architecture: str,
    hyperparameters: dict,
    input_bands: list[str],
    mean: list[float],
    stddev: list[float],
    halo: int,
    outputs: list[OutputVariable],
    weights_href: str,
    sha256: str,
    weights_size: int,
    total_parameters: int,
    framework_version: str,
    temporal: Literal["scene", "series"] = "scene",
    description: str = "",
    created: str = "2026-01-01T00:00:00Z",
    tile_size: int | None = None,
    bytes_per_pixel: int | None = None,
    pretrained_source: str | None = None,
) -> dict:
    """Build a card dict that validates against the MLM v1.5.2 schema."""
    spatial = ["batch", "bands", "height", "width"]
    shape = [-1, len(input_bands), -1, -1]
    if temporal == "series":
        spatial = ["batch", "bands", "time", "height", "width"]
        shape = [-1, len(input_bands), -1, -1, -1]
    tasks = sorted(
        {"semantic-segmentation" if o.kind == "classification" else "regression" for o in outputs}
    )
    extra: dict = {}
    if tile_size is not None:
        extra["geoproc:tile_size"] = tile_size
    if bytes_per_pixel is not None:
        extra["geoproc:bytes_per_pixel"] = bytes_per_pixel
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [
            MLM_SCHEMA,
            EO_SCHEMA,
            FILE_SCHEMA,
            CLASSIFICATION_SCHEMA,
            VERSION_SCHEMA,
        ],
        "id": f"{name}-{version}",
        "geometry": None,
        "properties": {
            "datetime": created,
            "description": description or f"{name} {version}",
            "version": version,
            "mlm:name": name,
            "mlm:architecture": architecture,
            "mlm:tasks": tasks,
            "mlm:framework": "PyTorch",
            "mlm:framework_version": framework_version,
            "mlm:total_parameters": total_parameters,
            "mlm:pretrained": pretrained_source is not None,
            "mlm:pretrained_source": pretrained_source,
            "mlm:accelerator": None,
            "mlm:accelerator_constrained": False,
            "mlm:hyperparameters": hyperparameters,
            "geoproc:halo": halo,
            "geoproc:temporal": temporal,
            **extra,
            "mlm:input": [
                {
                    "name": "reflectance" if temporal == "scene" else "reflectance series",
                    "bands": list(input_bands),
                    "input": {"shape": shape, "dim_order": spatial, "data_type": "float32"},
                    "value_scaling": [
                        {"type": "z-score", "mean": m, "stddev": s}
                        for m, s in zip(mean, stddev, strict=True)
                    ],
                    "resize_type": None,
                    "description": "Masked pixels (NaN) are filled with the band mean "
                    "before the forward pass; their outputs are written as nodata.",
                }
            ],
            "mlm:output": [_output_entry(o) for o in outputs],
        },
        "links": [],
        "assets": {
            "weights": {
                "href": weights_href,
                "title": f"{name} {version} weights",
                "type": "application/octet-stream; application=safetensors",
                "roles": ["mlm:model", "mlm:weights"],
                "mlm:artifact_type": "safetensors.torch.save_file",
                "file:checksum": _SHA256_MULTIHASH_PREFIX + sha256,
                "file:size": weights_size,
                "eo:bands": [_eo_band(b) for b in input_bands],
            }
        },
    }


_EO_COMMON_NAMES = {
    "coastal", "blue", "green", "red", "rededge", "yellow", "pan", "nir", "nir08", "nir09",
    "cirrus", "swir16", "swir22", "lwir", "lwir11", "lwir12",
}  # fmt: skip


def _eo_band(name: str) -> dict:
    """eo:bands entry; SAR polarisations (vv, vh) have no EO common name."""
    return {"name": name, "common_name": name} if name in _EO_COMMON_NAMES else {"name": name}


def _output_entry(o: OutputVariable) -> dict:
    entry: dict = {
        "name": o.name,
        "description": o.long_name,
        "tasks": ["semantic-segmentation" if o.kind == "classification" else "regression"],
        "result": {
            "shape": [-1, -1, -1],
            "dim_order": ["batch", "height", "width"],
            "data_type": o.dtype,
        },
        "geoproc:channels": list(o.channels),
        "geoproc:units": o.units,
        "geoproc:long_name": o.long_name,
        "geoproc:fill_value": "NaN" if _is_nan(o.fill_value) else o.fill_value,
    }
    if o.classes:
        entry["classification:classes"] = [
            {"value": v, "name": n, "description": n} for v, n in o.classes
        ]
    return entry


def dumps_card(doc: dict) -> str:
    """Stable JSON text (sorted keys) so a card's bytes only change when its content does."""
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _opt_int(value) -> int | None:
    return None if value is None else int(value)


def _fill(value: float | int | str) -> float | int:
    """JSON has no NaN, so cards spell a NaN fill as the string "NaN"."""
    return float(value) if isinstance(value, str) else value


def _is_nan(value: float | int) -> bool:
    return isinstance(value, float) and value != value
