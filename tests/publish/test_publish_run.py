"""Publishing a run end to end: idempotent reruns, interruptions, orphans, S3, the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from geoproc import storage
from geoproc.cli import main
from geoproc.errors import NoDataError, UnknownNameError, UsageError
from geoproc.publish import atomic
from geoproc.publish.publisher import publish_run
from tests.helpers.published_stores import (
    DATES,
    TILES,
    build_flood_store,
    publish_sample,
    snapshot,
    write_product_stores,
)


@pytest.fixture(scope="module")
def clean_flood(tmp_path_factory) -> dict[str, bytes]:
    """Snapshot of an uninterrupted publish of the flood product."""
    out = tmp_path_factory.mktemp("clean")
    publish_sample(out, products=("flood",))
    return snapshot(out)


def _assert_items_complete(root: Path) -> int:
    """Every item on disk has every asset, with the bytes its checksum names."""
    count = 0
    for item_path in (root / "stac").glob("*/*/*.json"):
        item = json.loads(item_path.read_text())
        for key, asset in item["assets"].items():
            target = (item_path.parent / asset["href"]).resolve()
            assert target.exists(), f"{item['id']} lists {key} but {target} is missing"
            if "file:checksum" in asset:
                digest = hashlib.sha256(target.read_bytes()).hexdigest()
                assert asset["file:checksum"] == "1220" + digest
        count += 1
    return count


def test_rerun_is_idempotent_byte_for_byte(tmp_path, clean_flood):
    out = tmp_path / "out"
    publish_sample(out, products=("flood",))
    first = snapshot(out)
    assert first == clean_flood  # another folder, same bytes: nothing path- or time-dependent
    mtimes = {p: (out / p).stat().st_mtime_ns for p in first}
    summary = publish_run(str(out), run_id="run-1")
    assert summary["objects"]["written"] == 0
    assert summary["objects"]["unchanged"] == len(first)
    assert snapshot(out) == first
    assert {p: (out / p).stat().st_mtime_ns for p in first} == mtimes


@pytest.mark.parametrize("fail_after", [6])
def test_interrupted_publish_leaves_no_item_without_assets(
    tmp_path, monkeypatch, clean_flood, fail_after
):
    out = tmp_path / "out"
    write_product_stores(out, products=("flood",))
    real_put = atomic.ObjectWriter.put
    calls = {"n": 0}

    def crashing_put(self, relpath, data):
        calls["n"] += 1
        if calls["n"] > fail_after:
            raise KeyboardInterrupt("simulated crash")
        return real_put(self, relpath, data)

    monkeypatch.setattr(atomic.ObjectWriter, "put", crashing_put)
    with pytest.raises(KeyboardInterrupt):
        publish_run(str(out), run_id="run-1")
    monkeypatch.setattr(atomic.ObjectWriter, "put", real_put)
    written = [p for p in snapshot(out)]
    assert 0 < len(written) <= fail_after
    _assert_items_complete(out)
    publish_run(str(out), run_id="run-1")
    assert _assert_items_complete(out) == 4
    assert snapshot(out) == clean_flood


def test_rerun_prunes_outputs_of_dates_no_longer_in_the_store(tmp_path):
    out = tmp_path / "out"
    publish_sample(out, products=("flood",))
    assert (out / "cog" / "flood" / sorted(TILES)[0] / DATES[1]).is_dir()
    stray = out / "cog" / "flood" / sorted(TILES)[0] / DATES[0] / ".water.tif.tmp-99"
    stray.write_bytes(b"half a write")
    for tile in TILES:
        ds = build_flood_store(tile, dates=DATES[:1])
        url = storage.parse_url(str(out)).join("products", "flood", f"{tile}.zarr")
        ds.to_zarr(storage.zarr_store(url), mode="w", consolidated=True, zarr_format=3)
    summary = publish_run(str(out), run_id="run-1")
    assert summary["objects"]["removed"] > 0
    left = snapshot(out)
    assert not [p for p in left if DATES[1] in p and not p.startswith("viewer/")]
    assert not stray.exists()
    collection = json.loads((out / "stac" / "flood" / "collection.json").read_text())
    assert len([link for link in collection["links"] if link["rel"] == "item"]) == 2
    assert _assert_items_complete(out) == 2


@pytest.mark.integration
def test_publish_to_s3_gives_the_same_objects_as_local(s3_bucket, clean_flood):
    url = f"s3://{s3_bucket}/run"
    write_product_stores(url, products=("flood",))
    summary = publish_run(url, run_id="run-1")
    fs, base = storage.filesystem(url)
    keys = {
        p[len(base) + 1 :]: fs.cat_file(p)
        for p in fs.find(base)
        if not p[len(base) + 1 :].startswith("products/")
    }
    assert keys == clean_flood
    assert summary["objects"]["written"] == len(clean_flood)
    again = publish_run(url, run_id="run-1")
    assert again["objects"]["written"] == 0


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(NoDataError, match="check --out"):
        publish_run(str(tmp_path / "empty"), run_id="r")
    write_product_stores(tmp_path / "out", products=("lst",))
    with pytest.raises(UnknownNameError, match="flood"):
        publish_run(str(tmp_path / "out"), products=["flood"], run_id="r")
    with pytest.raises(UsageError, match="run id"):
        publish_run(str(tmp_path / "out"), run_id="a/b")
    with pytest.raises(UsageError, match="tile ids"):
        publish_run(str(tmp_path / "out"), run_id="r", aoi="31N_0001_0001")


def test_cli_publishes_and_maps_errors_to_exit_codes(tmp_path, capsys):
    out = tmp_path / "out"
    write_product_stores(out, products=("lst",))
    tile = sorted(TILES)[1]
    args = ["publish", "--out", str(out), "--run-id", "cli-1", "--products", "lst", "--aoi", tile]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["products"]["lst"]["items"] == 2  # --aoi with a tile id: that tile only
    assert sorted(p.name for p in (out / "cog" / "lst").iterdir()) == [tile]
    assert (out / "viewer" / "run-cli-1.html").is_file()
    assert main(["publish", "--out", str(out), "--products", "canopy"]) == 2
    assert "--products" in capsys.readouterr().err
    assert main(["publish", "--out", str(tmp_path / "nothing")]) == 1
    assert main(["publish", "--out", "ftp://host/x"]) == 2


def test_rerun_after_the_product_changed_rerenders_its_tiles(tmp_path):
    out = tmp_path / "out"
    publish_sample(out, products=("flood",))
    before = snapshot(out)
    # the dates swap contents (the flood band moves): COGs and tile pyramids must follow
    for tile in TILES:
        ds = build_flood_store(tile, dates=(DATES[1], DATES[0]))
        url = storage.parse_url(str(out)).join("products", "flood", f"{tile}.zarr")
        ds.to_zarr(storage.zarr_store(url), mode="w", consolidated=True, zarr_format=3)
    publish_run(str(out), run_id="run-1")
    after = snapshot(out)
    changed = {p for p in before if before[p] != after.get(p)}
    assert any(p.startswith(f"tiles/flood/{DATES[1]}/") for p in changed)
    assert any(p.startswith(f"cog/flood/{sorted(TILES)[0]}/{DATES[1]}/") for p in changed)
    layer = json.loads(after["tiles/flood/layer.json"])
    assert layer["fingerprints"][DATES[0]] != layer["fingerprints"][DATES[1]]
    _assert_items_complete(out)
