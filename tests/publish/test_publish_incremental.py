"""Incremental publishing: a rerun encodes and writes only the dates whose inputs changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geoproc import storage
from geoproc.publish import publisher
from geoproc.publish.product_stores import ProductStore
from geoproc.publish.publisher import publish_run
from tests.helpers.published_stores import DATES, TILES, build_flood_store, snapshot

FLOOD_VARIABLES = ("water", "water_probability")


@pytest.fixture
def encode_counter(monkeypatch) -> dict[str, int]:
    """Counts COG encodes and pyramid renders (the expensive steps a rerun must skip)."""
    counts = {"cog": 0, "pyramid": 0}
    real_cog, real_tiles = publisher.cog_bytes, publisher.web_tiles.iter_tiles

    def counting_cog(*args, **kwargs):
        counts["cog"] += 1
        return real_cog(*args, **kwargs)

    def counting_tiles(*args, **kwargs):
        counts["pyramid"] += 1
        return real_tiles(*args, **kwargs)

    monkeypatch.setattr(publisher, "cog_bytes", counting_cog)
    monkeypatch.setattr(publisher.web_tiles, "iter_tiles", counting_tiles)
    return counts


def _write_flood(out: Path, dates, *, fingerprint: str | None = None) -> None:
    for tile in TILES:
        ds = build_flood_store(tile, dates=dates)
        if fingerprint:
            ds.attrs["geoproc:input_fingerprint"] = fingerprint
        url = storage.parse_url(str(out)).join("products", "flood", f"{tile}.zarr")
        ds.to_zarr(storage.zarr_store(url), mode="w", consolidated=True, zarr_format=3)


def _mtimes(out: Path, paths) -> dict[str, int]:
    return {p: (out / p).stat().st_mtime_ns for p in paths}


def test_noop_rerun_encodes_nothing_and_touches_no_file(tmp_path, encode_counter):
    out = tmp_path / "out"
    _write_flood(out, DATES)
    first = publish_run(str(out), run_id="run-1")
    assert encode_counter == {"cog": 2 * 2 * len(FLOOD_VARIABLES), "pyramid": 2}
    assert first["products"]["flood"]["items_written"] == 4
    before = snapshot(out)
    mtimes = _mtimes(out, before)
    encode_counter.update(cog=0, pyramid=0)

    again = publish_run(str(out), run_id="run-1")

    assert encode_counter == {"cog": 0, "pyramid": 0}
    assert again["products"]["flood"]["items_reused"] == 4
    assert again["products"]["flood"]["items_written"] == 0
    assert again["objects"]["written"] == 0
    assert again["objects"]["unchanged"] == len(before)
    assert snapshot(out) == before
    assert _mtimes(out, before) == mtimes


def test_rerun_with_a_new_run_id_keeps_items_of_the_run_that_made_them(tmp_path):
    out = tmp_path / "out"
    _write_flood(out, DATES)
    publish_run(str(out), run_id="run-1")
    before = snapshot(out)
    summary = publish_run(str(out), run_id="run-2")
    after = snapshot(out)
    changed = sorted(p for p in after if before.get(p) != after[p])
    # Only the viewer pages name the new run; no COG, tile, item or collection changes.
    assert changed == ["viewer/index.html", "viewer/run-run-2.html"]
    assert summary["objects"]["written"] == 2
    item = json.loads(
        after[
            f"stac/flood/flood-{sorted(TILES)[0]}-{DATES[0]}/"
            f"flood-{sorted(TILES)[0]}-{DATES[0]}.json"
        ]
    )
    assert item["properties"]["geoproc:run_id"] == "run-1"


def test_a_new_date_writes_only_that_date_and_what_lists_it(tmp_path, encode_counter):
    out = tmp_path / "out"
    _write_flood(out, DATES[:1])
    publish_run(str(out), run_id="run-1")
    before = snapshot(out)
    mtimes = _mtimes(out, before)
    encode_counter.update(cog=0, pyramid=0)

    _write_flood(out, DATES)
    summary = publish_run(str(out), run_id="run-2")

    assert encode_counter == {"cog": 2 * len(FLOOD_VARIABLES), "pyramid": 1}
    assert summary["products"]["flood"]["items_written"] == 2
    assert summary["products"]["flood"]["items_reused"] == 2
    after = snapshot(out)
    changed = {p for p in after if before.get(p) != after[p]}
    new_date = {p for p in changed if DATES[1] in p}
    assert {p for p in new_date if p.startswith("cog/")} == {
        f"cog/flood/{tile}/{DATES[1]}/{name}"
        for tile in TILES
        for name in (*(f"{v}.tif" for v in FLOOD_VARIABLES), "thumbnail.png")
    }
    assert {p for p in new_date if p.startswith("stac/")} == {
        f"stac/flood/flood-{tile}-{DATES[1]}/flood-{tile}-{DATES[1]}.json" for tile in TILES
    }
    assert any(p.startswith(f"tiles/flood/{DATES[1]}/") for p in new_date)
    assert changed - new_date == {
        "stac/flood/collection.json",
        "tiles/flood/layer.json",
        "publish-state/flood.json",
        "viewer/index.html",
        "viewer/run-run-2.html",
    }
    assert summary["objects"]["written"] == len(changed)
    # Every file of the first date is untouched, to the nanosecond.
    old_date = [p for p in before if DATES[0] in p]
    assert old_date and _mtimes(out, old_date) == {p: mtimes[p] for p in old_date}
    collection = json.loads(after["stac/flood/collection.json"])
    assert len([ln for ln in collection["links"] if ln["rel"] == "item"]) == 4
    assert collection["extent"]["temporal"]["interval"][0][1].startswith(DATES[1])


def test_store_with_an_input_fingerprint_is_not_read_again(tmp_path, monkeypatch):
    out = tmp_path / "out"
    _write_flood(out, DATES, fingerprint="abc123")
    publish_run(str(out), run_id="run-1")
    before = snapshot(out)

    def no_reads(self, variable, position):
        raise AssertionError(f"read {variable}[{position}] of an unchanged store")

    monkeypatch.setattr(ProductStore, "slice", no_reads)
    summary = publish_run(str(out), run_id="run-1")
    assert summary["objects"]["written"] == 0
    assert snapshot(out) == before


def test_a_deleted_output_is_published_again(tmp_path, encode_counter):
    out = tmp_path / "out"
    _write_flood(out, DATES, fingerprint="abc123")
    publish_run(str(out), run_id="run-1")
    before = snapshot(out)
    lost = f"cog/flood/{sorted(TILES)[1]}/{DATES[0]}/water_probability.tif"
    (out / lost).unlink()
    encode_counter.update(cog=0, pyramid=0)
    summary = publish_run(str(out), run_id="run-1")
    assert encode_counter["cog"] == len(FLOOD_VARIABLES)  # that date of that tile only
    assert summary["objects"]["written"] == 1  # the other bytes came out identical
    assert snapshot(out) == before


def test_publishing_one_tile_keeps_the_other_tiles_outputs(tmp_path, encode_counter):
    out = tmp_path / "out"
    _write_flood(out, DATES)
    publish_run(str(out), run_id="run-1")
    before = snapshot(out)
    encode_counter.update(cog=0, pyramid=0)
    first, second = sorted(TILES)
    (out / "cog" / "flood" / first / DATES[0] / "water.tif").unlink()
    summary = publish_run(str(out), run_id="run-1", aoi=first)
    assert summary["objects"]["removed"] == 0
    assert encode_counter["cog"] == len(FLOOD_VARIABLES)  # the lost date of that tile only
    assert snapshot(out) == before  # the other tile's COGs, items and tiles are all kept
    collection = json.loads((out / "stac" / "flood" / "collection.json").read_text())
    assert len([ln for ln in collection["links"] if ln["rel"] == "item"]) == 4
    assert sorted(collection["assets"]) == [f"zarr-{first}", f"zarr-{second}"]
