"""Weights: safetensors only, checked against the card's sha256 before anything is built.

Why: a pickled checkpoint (``torch.load``) can run arbitrary code at load time;
safetensors holds tensors and a JSON header only (https://huggingface.co/docs/safetensors).
The hash check means a corrupted or swapped file is refused instead of silently
producing a different map.
"""

from __future__ import annotations

import hashlib

import torch
from safetensors import SafetensorError
from safetensors.torch import load as _load_bytes
from torch import nn

from geoproc.errors import ModelError


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of bytes (what ``file:checksum`` holds after its multihash prefix)."""
    return hashlib.sha256(data).hexdigest()


def load_state_dict(data: bytes, *, expected_sha256: str, source: str) -> dict[str, torch.Tensor]:
    """Verify the hash of safetensors bytes, then decode them; nothing is executed."""
    actual = sha256_hex(data)
    if actual != expected_sha256.lower():
        raise ModelError(
            f"weights {source} have sha256 {actual} but the model card expects "
            f"{expected_sha256}; the file is corrupt or was replaced: restore the original "
            "weights or use the card that was published with them"
        )
    try:
        return _load_bytes(data)
    except (SafetensorError, ValueError) as exc:
        raise ModelError(
            f"weights {source} are not a readable safetensors file ({exc}); "
            "re-export them with safetensors.torch.save_file"
        ) from None


def apply_state_dict(module: nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Load tensors strictly: a missing or unexpected tensor means card and weights disagree."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(
            f"weights {source} do not fit the architecture named in the card: {exc}. "
            "Check mlm:architecture and mlm:hyperparameters"
        ) from None
