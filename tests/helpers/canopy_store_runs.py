"""A small red/NIR cube that grows date by date, canopy runs on it, and the product store's
data files (no test functions here): shared by the store-switch and yearly-refresh tests."""

from __future__ import annotations

import warnings

from geoproc.dev.bench._timeseries_cube import write_packed_cube
from geoproc.product_runner import MARKER, ProductResult, run_product_on_cube
from tests.helpers.store_bytes import store_bytes


def write_ndvi_cube(url: str, *, dates: int, ny: int, nx: int, first: int = 0) -> None:
    """Dates ``first..dates-1`` of a packed red/nir08 cube (5 days apart from 2024-01-01)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_packed_cube(url, dates=dates, first=first, ny=ny, nx=nx, bands=("red", "nir08"))


def run_canopy(cube_url: str, out: str, **options) -> ProductResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_product_on_cube("canopy", cube_url, out, tile="T", options=options)


def data_files(store: str) -> dict[str, bytes]:
    """The store's files but the completion marker (which records the cube's dates)."""
    return {k: v for k, v in store_bytes(store).items() if k != MARKER}
