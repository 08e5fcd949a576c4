"""Run report at a glance: inline SVG charts with true numbers, one kept report per attempt."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser

from geoproc import run_report
from geoproc.publish import report_charts
from geoproc.publish.report_history import archive_report
from geoproc.storage import parse_url


def _report(status: str = "written") -> dict:
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


class _Rects(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rects: list[dict] = []
        self.svgs = 0

    def handle_starttag(self, tag, attrs):
        if tag == "svg":
            self.svgs += 1
        if tag == "rect":
            self.rects.append(dict(attrs))


def _rects(svg: str) -> list[dict]:
    parser = _Rects()
    parser.feed(svg)
    return parser.rects


def test_stage_bars_are_proportional_to_the_time():
    rects = _rects(report_charts.stage_times_svg(_report()["timings_s"]))
    widths = [float(r["width"]) for r in rects]
    assert widths == [300.0, 150.0, 5.0]  # publish 60 s, cube 30 s, search 1 s


def test_inputs_bars_split_used_and_dropped_by_reason_and_escape_names():
    svg = report_charts.inputs_svg(_report()["inputs"])
    assert "duplicate&lt;b&gt;" in svg and "<b>" not in svg
    bars = [r for r in _rects(svg) if float(r.get("height", 0)) > 10]
    # HLSS30: 4 used + 2 cloud_cover; S1: 2 used + 1 duplicate; 300 px = 6 items
    assert [round(float(r["width"])) for r in bars] == [200, 100, 100, 50]
    assert "4 used, 2 dropped" in svg and "2 used, 1 dropped" in svg


def test_masked_fraction_cells_are_shaded_by_fraction_on_a_shared_time_axis():
    rects = _rects(report_charts.masked_svg(_report()["masked_fraction"]))
    fills = [r["fill"] for r in rects]
    assert fills == ["rgb(255,255,255)", "rgb(55,55,75)", "rgb(155,155,175)"]
    xs = [float(r["x"]) for r in rects]
    assert xs[1] == xs[2] > xs[0]  # the same date lines up across tiles


def test_tile_map_colours_tiles_by_status():
    status = report_charts.tile_status(_report())
    assert status == {"32N_0001_0001": "written", "32N_0002_0001": "failed"}
    rects = _rects(report_charts.tile_map_svg(status))
    cells = {r["fill"] for r in rects if r["width"] == "26"}
    assert cells == {
        report_charts.STATUS_COLOURS["written"],
        report_charts.STATUS_COLOURS["failed"],
    }


def test_report_has_four_charts_and_stays_offline(tmp_path):
    page = run_report.render_html(_report())
    parser = _Rects()
    parser.feed(page)
    assert parser.svgs == 4
    assert not re.search(r"https?://", page) and "<script" not in page


def test_a_rerun_keeps_the_report_of_the_run_that_did_the_work(tmp_path):
    out = parse_url(str(tmp_path))
    first = _report("written")
    archive_report(
        out,
        "20241231-abc",
        first,
        render=run_report.render_html,
        now=datetime(2025, 1, 1, 10, tzinfo=UTC),
    )
    kept = tmp_path / "runs" / "20241231-abc" / "history" / "20250101T100000.000000Z"
    before = (kept / "report.html").read_bytes()
    archive_report(
        out,
        "20241231-abc",
        _report("skipped"),
        render=run_report.render_html,
        now=datetime(2025, 1, 2, 10, tzinfo=UTC),
    )
    assert (kept / "report.html").read_bytes() == before
    assert (
        json.loads((kept / "report.json").read_text())["products"]["flood/32N_0001_0001"]["status"]
        == "written"
    )
    index = json.loads((tmp_path / "runs" / "index.json").read_text())
    assert [e["attempt"] for e in index] == ["20250102T100000.000000Z", "20250101T100000.000000Z"]
    assert [e["products_written"] for e in index] == [0, 1]
    assert [e["products_failed"] for e in index] == [1, 1]
    page = (tmp_path / "runs" / "index.html").read_text()
    for entry in index:
        assert f'href="{entry["report"]}"' in page
        assert (tmp_path / "runs" / entry["report"]).is_file()
    # links of the kept copy still reach the output root from the deeper folder
    link = json.loads((kept / "report.json").read_text())["links"]["viewer"]
    assert (kept / link).resolve() == (tmp_path / "viewer" / "index.html").resolve()
