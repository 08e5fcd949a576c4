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
from tests.helpers.report_fixtures import sample_map_report, sample_report


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
    rects = _rects(report_charts.stage_times_svg(sample_report()["timings_s"]))
    widths = [float(r["width"]) for r in rects]
    assert widths == [300.0, 150.0, 5.0]  # publish 60 s, cube 30 s, search 1 s


def test_inputs_bars_split_used_and_dropped_by_reason_and_escape_names():
    svg = report_charts.inputs_svg(sample_report()["inputs"])
    assert "duplicate&lt;b&gt;" in svg and "<b>" not in svg
    bars = [r for r in _rects(svg) if float(r.get("height", 0)) > 10]
    # HLSS30: 4 used + 2 cloud_cover; S1: 2 used + 1 duplicate; 300 px = 6 items
    assert [round(float(r["width"])) for r in bars] == [200, 100, 100, 50]
    assert "4 used, 2 dropped" in svg and "2 used, 1 dropped" in svg


def test_masked_fraction_cells_are_shaded_by_fraction_on_a_shared_time_axis():
    rects = _rects(report_charts.masked_svg(sample_report()["masked_fraction"]))
    fills = [r["fill"] for r in rects]
    assert fills == ["rgb(255,255,255)", "rgb(55,55,75)", "rgb(155,155,175)"]
    xs = [float(r["x"]) for r in rects]
    assert xs[1] == xs[2] > xs[0]  # the same date lines up across tiles


def test_tile_grid_colours_tiles_by_status():
    status = report_charts.tile_status(sample_report())
    assert status == {"32N_0001_0001": "done", "32N_0002_0001": "failed"}
    rects = _rects(report_charts.tile_map_svg(status))
    cells = {r["fill"] for r in rects if r["width"] == "26"}
    assert cells == {
        report_charts.STATUS_COLOURS["done"],
        report_charts.STATUS_COLOURS["failed"],
    }


def test_report_has_four_charts_and_stays_offline(tmp_path):
    page = run_report.render_html(sample_report())
    parser = _Rects()
    parser.feed(page)
    assert parser.svgs == 4
    assert page.count("<details>") == 3  # all dropped items, masked dates of each tile
    assert not re.search(r"https?://", page) and "<script" not in page


def test_a_rerun_keeps_the_report_of_the_run_that_did_the_work(tmp_path):
    out = parse_url(str(tmp_path))
    first = sample_report("written")
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
        sample_report("skipped"),
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


class _Shapes(HTMLParser):
    """Polygons of the tile map with their tile and fill, and the legend's labels."""

    def __init__(self) -> None:
        super().__init__()
        self.polygons: list[dict] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "polygon":
            self.polygons.append(dict(attrs))

    def handle_data(self, data):
        self.texts.append(data)


def test_tile_map_has_one_polygon_per_tile_in_its_status_colour_and_a_legend():
    report = sample_map_report()
    status = report_charts.tile_status(report)
    assert status == {
        "32N_0001_0001": "done",
        "32N_0002_0001": "skipped",
        "32N_0003_0001": "failed",
        "33N_0001_0001": "no data",
    }
    shapes = _Shapes()
    shapes.feed(report_charts.tile_map(report))
    fills = {p["data-tile"]: p["fill"] for p in shapes.polygons}
    assert len(shapes.polygons) == 4
    assert fills == {t: report_charts.STATUS_COLOURS[s] for t, s in status.items()}
    # the footprints keep their west-to-east order and equal widths on the page
    xs = [[float(pt.split(",")[0]) for pt in p["points"].split()] for p in shapes.polygons]
    lefts = [min(x) for x in xs]
    assert lefts == sorted(lefts)
    widths = {round(max(x) - min(x), 1) for x in xs}
    assert len(widths) == 1
    for state in ("done", "skipped", "failed", "no data"):
        assert state in shapes.texts


def test_backfill_units_give_the_tile_state():
    report = {
        "unit_results": {
            "32N_0001_0001": [{"status": "done", "steps_written": 3}, {"status": "skipped"}],
            "32N_0002_0001": [{"status": "done", "steps_written": 0}],
            "32N_0003_0001": [{"status": "done", "steps_written": 1}, {"status": "blocked"}],
        }
    }
    assert report_charts.tile_status(report) == {
        "32N_0001_0001": "done",
        "32N_0002_0001": "skipped",
        "32N_0003_0001": "failed",
    }


def test_links_to_prefect_and_dask_only_when_given(tmp_path):
    class _Links(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.hrefs: list[str] = []

        def handle_starttag(self, tag, attrs):
            self.hrefs += [v for k, v in attrs if k == "href"]

    def hrefs(report: dict) -> list[str]:
        parser = _Links()
        parser.feed(run_report.render_html(report))
        return sorted(parser.hrefs)

    plain = sample_report()
    assert hrefs(plain) == ["../../stac/catalog.json", "../../viewer/index.html"]
    prefect = "http://127.0.0.1:4200/runs/flow-run/0d3c5a1e-1b1b-4c1c-9a8e-1f2e3d4c5b6a"
    extra = {
        "prefect_flow_run": prefect,
        "dask_performance_report": "dask-performance-20250101T100000Z.html",
        "evil": "javascript:alert(1)",
    }
    linked = {**plain, "links": run_report.links(published=True, extra=extra)}
    assert "evil" not in linked["links"]
    assert hrefs(linked) == [
        "../../stac/catalog.json",
        "../../viewer/index.html",
        "dask-performance-20250101T100000Z.html",
        prefect,
    ]
    page = run_report.render_html(linked)
    assert ">Prefect flow run</a>" in page and ">Dask performance report</a>" in page
    # the kept copy re-roots the relative links only
    archive_report(parse_url(str(tmp_path)), "20241231-abc", linked, render=run_report.render_html)
    (kept,) = (tmp_path / "runs" / "20241231-abc" / "history").iterdir()
    copied = json.loads((kept / "report.json").read_text())["links"]
    assert copied["prefect_flow_run"] == prefect
    assert copied["dask_performance_report"] == "../../dask-performance-20250101T100000Z.html"
    assert (kept / copied["dask_performance_report"]).resolve() == (
        tmp_path / "runs" / "20241231-abc" / "dask-performance-20250101T100000Z.html"
    ).resolve()


def test_cube_repairs_are_listed_per_step():
    report = {
        **sample_report(),
        "cubes": {
            "32N_0001_0001": {
                "tile": "32N_0001_0001",
                "steps_written": ["2024-01-02T10:00:00/S30"],
                "steps_repaired": [
                    {"time": "2024-01-02T10:00:00", "platform": "S30", "damage": ["red chunk 0.0"]}
                ],
                "steps_damaged": [{"time": "2023-05-01T10:00:00", "platform": "L30", "damage": []}],
                "metadata_restored": ["red/.zarray"],
            }
        },
    }
    rows = run_report.cube_repairs(report)
    assert [(r["step"], r["outcome"]) for r in rows] == [
        ("2024-01-02T10:00:00/S30", "repaired"),
        ("2023-05-01T10:00:00/L30", "still damaged"),
        ("", "restored"),
    ]
    page = run_report.render_html(report)
    assert "<h2>Cube repairs</h2><p>1 repaired, 1 restored, 1 still damaged</p>" in page
    assert "Cube repairs" not in run_report.render_html(sample_report())
