"""A full product rewrite is written beside the old store and switched in one step: a reader
never finds the store missing or half-written, and a killed rewrite leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest
import xarray as xr

from geoproc import storage, store_switch
from tests.helpers.canopy_store_runs import data_files as _data
from tests.helpers.canopy_store_runs import run_canopy as _run
from tests.helpers.canopy_store_runs import write_ndvi_cube


def _folder(path: Path, text: str) -> None:
    path.mkdir(parents=True)
    (path / "zarr.json").write_text(text)


def test_commit_exchanges_the_versions_and_removes_the_old(tmp_path):
    target = storage.parse_url(str(tmp_path / "T.zarr"))
    _folder(tmp_path / "T.zarr", "old")
    staged = store_switch.staging(target)
    assert Path(staged.path).name == ".T.zarr.next" and not Path(staged.path).exists()
    _folder(Path(staged.path), "new")
    store_switch.commit(staged, target)
    assert (tmp_path / "T.zarr" / "zarr.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["T.zarr"]


def test_commit_into_an_empty_place_and_stale_staging_is_cleared(tmp_path):
    target = storage.parse_url(str(tmp_path / "T.zarr"))
    _folder(tmp_path / ".T.zarr.next", "left by a killed run")
    staged = store_switch.staging(target)
    assert not Path(staged.path).exists()
    _folder(Path(staged.path), "new")
    store_switch.commit(staged, target)
    assert (tmp_path / "T.zarr" / "zarr.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["T.zarr"]


def test_commit_without_the_exchange_call_still_replaces(tmp_path, monkeypatch):
    monkeypatch.setattr(store_switch, "_exchange", lambda a, b: False)
    target = storage.parse_url(str(tmp_path / "T.zarr"))
    _folder(tmp_path / "T.zarr", "old")
    staged = store_switch.staging(target)
    _folder(Path(staged.path), "new")
    store_switch.commit(staged, target)
    assert (tmp_path / "T.zarr" / "zarr.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["T.zarr"]


@pytest.fixture
def cube_url(tmp_path):
    url = str(tmp_path / "cube.zarr")
    write_ndvi_cube(url, dates=6, ny=40, nx=32)
    return url


def test_readers_see_the_old_store_until_the_new_one_is_complete(cube_url, tmp_path, monkeypatch):
    out = str(tmp_path / "out")
    first = _run(cube_url, out)
    old = _data(first.store)
    seen: dict[str, object] = {}
    real_commit = store_switch.commit

    def spy(staged, location):
        # The new version is complete beside the old one, which still opens as it was.
        seen["old"] = _data(location.path)
        seen["classes"] = xr.open_zarr(location.path)["canopy_class"].load()
        seen["staged"] = _data(staged.path)
        real_commit(staged, location)

    monkeypatch.setattr(store_switch, "commit", spy)
    rewritten = _run(cube_url, out, mapping_unit_ha=0)  # new options: a full rewrite
    assert rewritten.status == "written"
    assert seen["old"] == old
    assert seen["classes"].shape == (1, 40, 32)
    monkeypatch.undo()
    clean = _run(cube_url, str(tmp_path / "clean"), mapping_unit_ha=0)
    assert seen["staged"] == _data(rewritten.store) == _data(clean.store) != old
    assert sorted(p.name for p in Path(rewritten.store).parent.iterdir()) == ["T.zarr"]


def test_a_rewrite_killed_before_the_switch_keeps_the_old_store(cube_url, tmp_path, monkeypatch):
    out = str(tmp_path / "out")
    first = _run(cube_url, out)
    old = _data(first.store)

    def killed(staged, location):
        raise KeyboardInterrupt  # the process dies between the write and the switch

    monkeypatch.setattr(store_switch, "commit", killed)
    with pytest.raises(KeyboardInterrupt):
        _run(cube_url, out, mapping_unit_ha=0)
    assert _data(first.store) == old  # readers still have the complete old version
    monkeypatch.undo()
    rerun = _run(cube_url, out, mapping_unit_ha=0)
    clean = _run(cube_url, str(tmp_path / "clean"), mapping_unit_ha=0)
    assert rerun.status == "written" and _data(rerun.store) == _data(clean.store)
    assert sorted(p.name for p in Path(rerun.store).parent.iterdir()) == ["T.zarr"]
