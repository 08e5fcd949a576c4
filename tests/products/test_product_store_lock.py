"""Product stores have one writer at a time, like cubes: a second run is refused by name."""

from __future__ import annotations

import pytest

from geoproc import storage, store_lock
from geoproc.errors import StoreLockedError
from geoproc.product_runner import product_location, run_product_on_cube
from tests.helpers.cube_builds import build_cube, cube_path, make_archive
from tests.helpers.cube_items import TILE


def test_a_second_product_run_on_a_held_store_is_refused_and_the_lock_kept(tmp_path):
    cat = make_archive(tmp_path, n=2)
    out = tmp_path / "out"
    build_cube(cat, out)
    location = product_location(str(out), "lst", TILE.id)
    with store_lock.hold(location, what="product run") as token:
        with pytest.raises(StoreLockedError, match="product run|lock"):
            run_product_on_cube("lst", str(cube_path(out)), str(out), tile=TILE.id)
        lock = store_lock.lock_location(location)
        assert token in storage.read_bytes(lock).decode()  # the refused run left ours alone
    assert not storage.exists(store_lock.lock_location(location))
