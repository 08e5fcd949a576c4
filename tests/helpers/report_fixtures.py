"""Run-report documents for the report chart and browser tests (no test functions here).

Both the chart unit tests and the browser check render the same reports, so they live here.
"""

from __future__ import annotations

from geoproc import run_report


def sample_report(status: str = "written") -> dict:
    """A regional run report with two tiles; `status` is the first flood product's outcome."""
    return {
        "run_id": "20241231-abc",
        "kind": "regional",
        "status": "complete",
        "timings_s": {"search": 1.0, "cube": 30.0, "publish": 60.0},
        "inputs": {
            "found": 9,
            "used_per_collection": {"HLSS30_2.0": 4, "sentinel-1-rtc": 2},
            "dropped": [
                {"id": "a", "collection": "HLSS30_2.0", "reason": "cloud_cover"},
                {"id": "b", "collection": "HLSS30_2.0", "reason": "cloud_cover"},
                {"id": "c", "collection": "sentinel-1-rtc", "reason": "duplicate<b>"},
            ],
        },
        "masked_fraction": {
            "32N_0001_0001": [
                {"time": "2024-01-01T10:00:00", "platform": "S30", "masked_fraction": 0.0},
                {"time": "2024-01-02T10:00:00", "platform": "S30", "masked_fraction": 1.0},
            ],
            "32N_0002_0001": [
                {"time": "2024-01-02T10:00:00", "platform": "S30", "masked_fraction": 0.5},
            ],
        },
        "cubes": {
            "32N_0001_0001": {"tile": "32N_0001_0001", "steps_written": ["x"]},
            "32N_0002_0001": {"tile": "32N_0002_0001", "steps_written": []},
        },
        "products": {
            "flood/32N_0001_0001": {"status": status},
            "flood/32N_0002_0001": {"status": "failed"},
        },
        "links": run_report.links(published=True),
    }


def _outline(lon: float, lat: float, d: float = 0.1) -> list[list[float]]:
    return [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]


def sample_map_report() -> dict:
    """Four tiles, one per state: a written cube, a rerun skip, a failed product, no scene."""
    return {
        "tiles": {
            "32N_0001_0001": _outline(9.0, 45.0),
            "32N_0002_0001": _outline(9.1, 45.0),
            "32N_0003_0001": _outline(9.2, 45.0),
            "33N_0001_0001": _outline(9.3, 45.0),
        },
        "cubes": {
            "32N_0001_0001": {"tile": "32N_0001_0001", "steps_written": ["a", "b"]},
            "32N_0002_0001": {"tile": "32N_0002_0001", "steps_written": []},
            "32N_0003_0001": {"tile": "32N_0003_0001", "steps_written": ["c"]},
            "33N_0001_0001": {"status": "no data"},
        },
        "products": {
            "flood/32N_0001_0001": {"status": "appended"},
            "flood/32N_0002_0001": {"status": "skipped"},
            "flood/32N_0003_0001": {"status": "failed"},
        },
    }
