"""The one list of products and the one way to load a product's package, spec or real cases.

Everything that needs "which products exist" or "the package of product NAME" asks here,
instead of keeping its own name tuple and ``importlib`` call: adding a product means adding
its package and one line below. Loading is lazy, so the CLI parser can name the products
without importing numpy or torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from geoproc.errors import UnknownNameError

if TYPE_CHECKING:
    from geoproc.products.base import ProductSpec

PRODUCT_NAMES: tuple[str, ...] = ("flood", "lst", "canopy")
"""Every product, in the order runs and reports list them."""


def check_product(name: str) -> str:
    """`name`, or `UnknownNameError` listing the products."""
    if name not in PRODUCT_NAMES:
        raise UnknownNameError(f"Unknown product {name!r}: choose from {', '.join(PRODUCT_NAMES)}.")
    return name


def product_package(name: str) -> ModuleType:
    """The product's package (`geoproc.products.flood`, ...): its ``SPEC`` and ``run``."""
    return importlib.import_module(f"geoproc.products.{check_product(name)}")


def product_spec(name: str) -> ProductSpec:
    """The product's declared inputs, outputs and blocking."""
    return product_package(name).SPEC


def real_cases_module(name: str) -> ModuleType:
    """The product's real labelled cases (``evaluate_real(folders) -> rows``)."""
    return importlib.import_module(f"geoproc.products.{check_product(name)}.real_cases")
