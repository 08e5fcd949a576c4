"""Architecture registry: a card names its architecture, the code lives here, never in weights.

Why: safetensors files hold tensors only, so loading one executes nothing; the card's
``mlm:architecture`` plus ``mlm:hyperparameters`` pick and configure a constructor that
ships with geoproc (the same split as torchgeo's ``get_model`` + weights enums).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from geoproc.errors import ModelError, UnknownNameError

_ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register_architecture(name: str, builder: Callable[..., nn.Module]) -> None:
    """Make ``builder(**hyperparameters)`` available to cards under ``name``."""
    _ARCHITECTURES[name] = builder


def architecture_names() -> list[str]:
    """Names a card may use in ``mlm:architecture``."""
    return sorted(_ARCHITECTURES)


def build_architecture(name: str, **hyperparameters) -> nn.Module:
    """Construct an untrained module by registered name."""
    if name not in _ARCHITECTURES:
        _discover()
    try:
        builder = _ARCHITECTURES[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown model architecture {name!r} in the model card; "
            f"set mlm:architecture to one of {architecture_names()}"
        ) from None
    try:
        return builder(**hyperparameters)
    except TypeError as exc:
        raise ModelError(
            f"mlm:hyperparameters {sorted(hyperparameters)} do not fit architecture {name!r} "
            f"({exc}); fix the model card"
        ) from None


def _discover() -> None:
    """Import geoproc's model modules so their ``register_architecture`` calls run.

    Only modules shipped inside geoproc are imported (never a name taken from a card),
    so a card from a remote store cannot make geoproc import arbitrary code.
    """
    import importlib
    import pkgutil

    import geoproc.inference.models
    import geoproc.products

    for pkg in (geoproc.inference.models, geoproc.products):
        for m in pkgutil.iter_modules(pkg.__path__):
            if m.name.endswith(("_unet", "_model", "_fcn", "_net")):
                try:
                    importlib.import_module(f"{pkg.__name__}.{m.name}")
                except ImportError:
                    continue


def _register_builtin() -> None:
    from geoproc.inference.models.tiny_fcn import TinyFCN

    register_architecture("TinyFCN", TinyFCN)


_register_builtin()
