"""The run report as a browser shows it: charts drawn, tile map coloured, long lists folded."""

from __future__ import annotations

import pytest

from geoproc import run_report
from geoproc.publish import report_charts
from tests.helpers.browser import Browser, require_chromium
from tests.helpers.report_fixtures import sample_map_report, sample_report

pytestmark = pytest.mark.integration


def test_report_renders_offline_with_its_map_and_folded_drop_list(tmp_path):
    report = {**sample_report(), **sample_map_report()}
    page = tmp_path / "report.html"
    page.write_text(run_report.render_html(report))
    browser = Browser(require_chromium(), tmp_path / "profile", width=1200, height=900)
    try:
        browser.goto(page.as_uri())
        browser.wait_for("document.readyState === 'complete'")
        assert browser.evaluate("document.querySelectorAll('svg').length") == 4
        fills = browser.evaluate(
            "Object.fromEntries([...document.querySelectorAll('polygon[data-tile]')]"
            ".map(p => [p.dataset.tile, getComputedStyle(p).fill]))"
        )
        expected = {
            t: report_charts.STATUS_COLOURS[s] for t, s in report_charts.tile_status(report).items()
        }
        assert {t: _hex(c) for t, c in fills.items()} == expected
        # the full list of dropped items is folded until its summary is clicked
        shown = "document.querySelector('details table').checkVisibility()"
        assert browser.evaluate(shown) is False
        browser.evaluate("document.querySelector('details summary').click()")
        assert browser.evaluate(shown) is True
        assert browser.errors() == []
    finally:
        browser.close()


def _hex(css: str) -> str:
    """`rgb(46, 125, 50)` as `#2e7d32`."""
    r, g, b = (int(v) for v in css[css.index("(") + 1 : css.index(")")].split(","))
    return f"#{r:02x}{g:02x}{b:02x}"
