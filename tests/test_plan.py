"""Planning before running: tile counts without enumeration, limits, and `geoproc plan`."""

from __future__ import annotations

import json
import re
import time
from datetime import date

import pytest

from geoproc.grid import estimate_tile_count, tiles_for_aoi
from geoproc.plan import PlanTooLargeError, expected_acquisitions, plan_request
from geoproc.request import RunRequest

AFRICA = "-18,-35,52,37"
ALPS = "10,45,12,47"


@pytest.mark.parametrize(
    "aoi",
    ["10,45,12,47", "5,-2,9,3", "-75,40,-70,44", "140,-40,150,-30", "-3.56,50.70,-3.50,50.74"],
)
def test_estimate_matches_the_enumerated_tiles(aoi):
    exact = len(tiles_for_aoi(aoi))
    estimate = estimate_tile_count(aoi)
    assert exact <= estimate <= max(exact * 1.06, exact + 2), (exact, estimate)


def test_tile_id_aois_are_counted_exactly():
    assert estimate_tile_count("32N_0023_0174,32N_0023_0175,32N_0023_0174") == 2


def test_revisit_cycles():
    year = (date(2024, 1, 1), date(2024, 12, 31))
    assert expected_acquisitions("HLSL30_2.0", *year) == 45  # 366 d / 8 d
    assert expected_acquisitions("HLSS30_2.0", *year) == 73  # / 5 d
    assert expected_acquisitions("sentinel-1-rtc", *year) == 61  # 2 per 12 d
    assert expected_acquisitions("hls2-s30", *year) == 73  # aliases resolve


def test_whole_globe_over_50_years_is_refused_fast_naming_the_arguments(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(PlanTooLargeError) as err:
        RunRequest.create(
            products="flood", aoi="-180,-90,180,90", start="1975-01-01", end="2024-12-31",
            catalog="http://127.0.0.1:9", out=str(tmp_path / "out"),
        )  # fmt: skip
    elapsed = time.perf_counter() - t0
    message = str(err.value)
    assert err.value.exit_code == 2
    assert "--aoi -180,-90,180,90" in message and "--start/--end" in message
    tiles = int(re.search(r"about ([\d,]+) processing tiles", message)[1].replace(",", ""))
    assert 500_000 < tiles < 650_000  # ~510 M km2 between 80.5S and 84.5N / 943.7 km2 per tile
    assert "GEOPROC_MAX_PLAN_TILES" in message
    # enumerating those tiles took > 120 s before; a loose bound guards the regression
    assert elapsed < 10, elapsed
    assert not (tmp_path / "out").exists()


def test_cli_refuses_the_globe_with_exit_2_before_writing(tmp_path, capsys):
    from geoproc.cli import main

    argv = ["--aoi=-180,-90,180,90", "--start", "1975-01-01", "--end", "2024-12-31"]
    out = ["--out", str(tmp_path / "out")]
    assert main(["run", "flood", "--catalog", "http://127.0.0.1:9", *argv, *out]) == 2
    assert "processing tiles" in capsys.readouterr().err
    cube = ["cube", "build", "--catalog", str(tmp_path), "--collections", "HLSS30_2.0"]
    assert main([*cube, *argv, *out]) == 2
    assert "processing tiles" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_tile_step_limit_names_the_dates(monkeypatch, tmp_path):
    monkeypatch.setenv("GEOPROC_MAX_PLAN_TILE_STEPS", "1000")
    with pytest.raises(PlanTooLargeError) as err:
        RunRequest.create(
            products="flood", aoi=ALPS, start="2020-01-01", end="2024-12-31",
            catalog="http://127.0.0.1:9", out=str(tmp_path / "out"),
        )  # fmt: skip
    message = str(err.value)
    assert "--start 2020-01-01 --end 2024-12-31" in message and "tile time steps" in message
    assert "GEOPROC_MAX_PLAN_TILE_STEPS" in message


def _plan(aoi: str) -> dict:
    return plan_request(
        products=("flood", "lst", "canopy"), aoi=aoi, start=date(2024, 1, 1),
        end=date(2024, 12, 31), collections=("HLSL30_2.0", "HLSS30_2.0", "sentinel-1-rtc"),
        tile_size_px=1024, resolution=30.0,
    )  # fmt: skip


def test_continent_plan_answers_in_seconds_and_scales_linearly_with_a_small_one():
    t0 = time.perf_counter()
    big = _plan(AFRICA)
    elapsed = time.perf_counter() - t0
    small = _plan(ALPS)
    assert not big["tiles_exact"] and small["tiles_exact"]
    assert 60_000 < big["tiles"] < 70_000 and small["tiles"] == 48
    assert elapsed < 10, elapsed
    ratio = big["tiles"] / small["tiles"]
    # every figure is per tile x tiles: the continent is the small region scaled by the ratio
    assert big["time_steps_per_tile"] == small["time_steps_per_tile"] == 45 + 73 + 61
    assert big["input_bytes"] == pytest.approx(small["input_bytes"] * ratio, rel=1e-9)
    for kind in ("cube_zarr", "product_zarr", "cog"):
        assert big["output_bytes"][kind] == pytest.approx(
            small["output_bytes"][kind] * ratio, rel=1e-9
        )
    assert big["cpu_hours"]["total"] == pytest.approx(small["cpu_hours"]["total"] * ratio, rel=1e-3)
    assert big["peak_memory_mib_per_worker"] == small["peak_memory_mib_per_worker"]
    assert not big["limits"]["within"] and small["limits"]["within"]
    # per tile and year: HLS L30 45 x (10 int16 bands + uint8 Fmask = 21 B) x 1024² read
    l30 = small["collections"]["HLSL30_2.0"]
    assert l30["input_bytes_per_tile"] == 45 * 21 * 1024 * 1024
    # lst needs lwir11: only L30 acquisitions feed it; canopy makes one map per year
    assert small["products"]["lst"]["output_steps_per_tile"] == 45
    assert small["products"]["canopy"]["output_steps_per_tile"] == 1
    assert small["products"]["flood"]["output_steps_per_tile"] == 179


def test_plan_cli_prints_text_and_json_without_a_catalog(capsys):
    from geoproc.cli import main

    argv = ["plan", "flood,lst", "--aoi", ALPS, "--start", "2024-01-01", "--end", "2024-12-31"]
    assert main([*argv, "--out", "s3://bucket/x"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("tiles            48 (1024 px at 30 m), 366 days")
    assert "CPU-hours" in text and "peak memory" in text and "every 8 d" in text
    assert main([*argv, "--out", "s3://bucket/x", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["tiles"] == 48 and set(plan["products"]) == {"flood", "lst"}
