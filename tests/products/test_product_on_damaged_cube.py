"""A product never reads a damaged cube: a geoproc error naming the step, not a traceback."""

from __future__ import annotations

import pytest

from geoproc.errors import StoreError
from geoproc.product_runner import refuse_damaged_cube, run_product_on_cube
from tests.helpers.cube_builds import build_cube, cube_path, make_archive
from tests.helpers.cube_items import TILE


def test_product_on_a_truncated_chunk_names_the_step_and_the_repair(tmp_path):
    cat = make_archive(tmp_path, n=3)
    build_cube(cat, tmp_path / "out")
    store = cube_path(tmp_path / "out")
    refuse_damaged_cube(str(store))  # a good cube passes the quick check
    (store / "red" / "1.0.0").write_bytes(b"")
    with pytest.raises(StoreError) as err:
        run_product_on_cube("lst", str(store), str(tmp_path / "out"), tile=TILE.id)
    message = str(err.value)
    assert "damaged" in message and "step 1: red: chunk 1.0.0 is 0 bytes" in message
    assert "geoproc cube build" in message and "--collections" not in message
    products = tmp_path / "out" / "products"
    assert not [f for f in products.rglob("*") if f.is_file()]  # nothing written, lock released
