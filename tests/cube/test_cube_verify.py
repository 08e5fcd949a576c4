"""Verified chunks: damaged steps are found, rewritten from their sources to clean-build bytes."""

from __future__ import annotations

import json

import pytest

from geoproc import storage
from geoproc.cli import main
from geoproc.cube.verify import verify_cube
from geoproc.errors import StoreError
from tests.helpers.cube_builds import build_cube, cube_path, make_archive
from tests.helpers.cube_items import TILE, store_bytes


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("verify")
    cat = make_archive(root, n=4)
    build_cube(cat, root / "clean")
    return cat, root, store_bytes(cube_path(root / "clean"))


def _fresh(root, name, cat):
    out = root / name
    build_cube(cat, out)
    return out


def test_zero_byte_chunk_is_repaired_to_clean_bytes(built):
    cat, root, clean = built
    out = _fresh(root, "zero", cat)
    chunk = cube_path(out) / "red" / "2.0.0"
    chunk.write_bytes(b"")
    rec = build_cube(cat, out)["tiles"][TILE.id]
    assert [r["time"][:10] for r in rec["steps_repaired"]] == ["2024-03-11"]
    assert rec["steps_repaired"][0]["damage"] == ["red: chunk 2.0.0 is 0 bytes"]
    assert rec["steps_written"] == ["2024-03-11T10:20:30/L30"] and rec["steps_skipped"] == 3
    assert store_bytes(cube_path(out)) == clean


def test_corrupt_chunk_needs_full_verify_and_is_repaired(built):
    cat, root, clean = built
    out = _fresh(root, "flip", cat)
    chunk = cube_path(out) / "fmask" / "1.0.0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, only zstd's frame checksum can tell
    chunk.write_bytes(bytes(data))
    quick = build_cube(cat, out)["tiles"][TILE.id]
    assert quick["steps_repaired"] == [] and quick["steps_written"] == []
    report = verify_cube(storage.parse_url(str(cube_path(out))), level="full")
    assert list(report.damaged) == [1] and "fmask" in report.damaged[1][0]
    full = build_cube(cat, out, verify="full")["tiles"][TILE.id]
    assert [r["time"][:10] for r in full["steps_repaired"]] == ["2024-02-12"]
    assert store_bytes(cube_path(out)) == clean
    assert verify_cube(storage.parse_url(str(cube_path(out))), level="full").ok


def test_lost_variable_metadata_is_restored_from_consolidated_copy(built):
    cat, root, clean = built
    out = _fresh(root, "meta", cat)
    (cube_path(out) / "green" / ".zarray").unlink()
    rec = build_cube(cat, out)["tiles"][TILE.id]
    assert rec["metadata_restored"] == ["green"] and rec["steps_written"] == []
    assert store_bytes(cube_path(out)) == clean


def test_lost_metadata_without_a_copy_names_the_damage_not_collections(built):
    cat, root, _ = built
    out = _fresh(root, "nocopy", cat)
    store = cube_path(out)
    (store / "green" / ".zarray").unlink()
    doc = json.loads((store / ".zmetadata").read_text())
    del doc["metadata"]["green/.zarray"]
    (store / ".zmetadata").write_text(json.dumps(doc))
    with pytest.raises(StoreError) as err:
        build_cube(cat, out)
    assert "green/.zarray" in str(err.value) and "--collections" not in str(err.value)


def test_verify_command_exit_codes_and_report(built, tmp_path, capsys):
    cat, root, _ = built
    out = _fresh(root, "cmd", cat)
    assert main(["verify", str(out), "--record", str(tmp_path / "ok.json")]) == 0
    good = json.loads((tmp_path / "ok.json").read_text())["stores"][0]
    # 4 steps x 4 image variables (green, red, lwir11, fmask) x 1 chunk (64 px tile)
    assert good["chunks_checked"] == 16 and good["damaged_steps"] == {}
    (cube_path(out) / "lwir11" / "3.0.0").write_bytes(b"\x00" * 7)
    assert main(["verify", str(out), "--record", str(tmp_path / "bad.json")]) == 1
    bad = json.loads((tmp_path / "bad.json").read_text())["stores"][0]
    assert list(bad["damaged_steps"]) == ["3"] and "lwir11" in bad["damaged_steps"]["3"][0]
    assert "damaged steps 3" in capsys.readouterr().err


def test_cube_build_verify_full_flag_repairs_a_flipped_byte(built, tmp_path):
    cat, root, clean = built
    out = _fresh(root, "flag", cat)
    chunk = cube_path(out) / "red" / "0.0.0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    argv = ["cube", "build", "--catalog", str(cat), "--collections", "HLSL30_2.0",
            "--aoi", TILE.id, "--start", "2024-01-01", "--end", "2024-12-31", "--out", str(out),
            "--tile-size", "64", "--bands", "green,red,lwir11",
            "--record", str(tmp_path / "rec.json")]  # fmt: skip
    assert main([*argv, "--verify", "full"]) == 0
    record = json.loads((tmp_path / "rec.json").read_text())["tiles"][TILE.id]
    assert [r["time"][:10] for r in record["steps_repaired"]] == ["2024-01-15"]
    assert store_bytes(cube_path(out)) == clean
