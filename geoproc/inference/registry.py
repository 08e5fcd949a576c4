"""Model registry: list and load models (card + safetensors) by name and version.

Why: users and flows name a model (``tiny-fcn`` or ``tiny-fcn@1.0.0``), never a file.
Models come from the cards shipped in ``geoproc/inference/cards/`` or from any folder
URL (file://, s3:// via fsspec) holding ``*.json`` cards next to their weights. Loaded
models are cached per process, keyed by name, version and weights sha256, so a Dask
worker builds each model once and keeps it.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from geoproc.errors import ModelError, UnknownNameError
from geoproc.inference._io import filesystem
from geoproc.inference.architectures import build_architecture
from geoproc.inference.card import ModelCard, parse_card
from geoproc.inference.weights import apply_state_dict, load_state_dict

log = logging.getLogger(__name__)

PACKAGE_SOURCE = str(Path(__file__).parent / "cards")
_CACHE: dict[tuple[str, str, str, str], LoadedModel] = {}
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class LoadedModel:
    """A card and its module, built from verified weights, in eval mode on CPU."""

    card: ModelCard
    module: nn.Module
    source: str


def list_models(*, source: str | None = None) -> list[ModelCard]:
    """Every card in a source folder (the package's by default), sorted by name, version."""
    root = source or PACKAGE_SOURCE
    fs, path = filesystem(root)
    try:
        names = sorted(p for p in fs.ls(path, detail=False) if p.endswith(".json"))
    except FileNotFoundError:
        raise ModelError(
            f"model source {root!r} does not exist; pass a folder URL holding model cards"
        ) from None
    cards = []
    for name in names:
        with fs.open(name, "rb") as f:
            try:
                doc = json.load(f)
            except json.JSONDecodeError as exc:
                raise ModelError(f"model card {name} is not valid JSON ({exc}); fix it") from None
        if "mlm:name" in doc.get("properties", {}):
            cards.append(parse_card(doc))
    return sorted(cards, key=lambda c: (c.name, _version_key(c.version)))


def find_card(ref: str, *, source: str | None = None) -> ModelCard:
    """The card for ``name`` (newest version) or ``name@version``."""
    name, _, version = ref.partition("@")
    cards = list_models(source=source)
    matching = [c for c in cards if c.name == name and (not version or c.version == version)]
    if not matching:
        known = ", ".join(c.key for c in cards) or "none"
        raise UnknownNameError(
            f"no model {ref!r} in {source or 'the geoproc package'}; known models: {known}"
        )
    return matching[-1]


def load_model(ref: str, *, source: str | None = None, cache: bool = True) -> LoadedModel:
    """Build the model named ``ref`` from verified weights (cached per process)."""
    card = find_card(ref, source=source)
    return load_from_card(card, source=source, cache=cache)


def load_from_card(card: ModelCard, *, source: str | None = None, cache: bool = True):
    """Build a model from a parsed card; weights are read relative to ``source``."""
    root = source or PACKAGE_SOURCE
    key = (root, card.name, card.version, card.sha256)
    if cache:
        with _CACHE_LOCK:
            if key in _CACHE:
                return _CACHE[key]
    fs, path = filesystem(root)
    href = card.weights_href
    weights_path = href if "://" in href or href.startswith("/") else f"{path}/{href}"
    try:
        with fs.open(weights_path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ModelError(
            f"weights {weights_path} named by model card {card.key} are missing; "
            "copy them next to the card"
        ) from None
    state = load_state_dict(data, expected_sha256=card.sha256, source=weights_path)
    module = build_architecture(card.architecture, **card.hyperparameters)
    apply_state_dict(module, state, source=weights_path)
    module.eval()
    loaded = LoadedModel(card=card, module=module, source=root)
    log.info("loaded model %s (sha256 %s) from %s", card.key, card.sha256[:12], root)
    if cache:
        with _CACHE_LOCK:
            _CACHE.setdefault(key, loaded)
            loaded = _CACHE[key]
    return loaded


def clear_cache() -> None:
    """Forget cached models (tests use it to count loads)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in version.replace("-", ".").split("."))
