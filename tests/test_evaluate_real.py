"""The real-data scoreboard harness: folder discovery, targets, the table, the command."""

from __future__ import annotations

import sys
import types

import pytest

from geoproc import evaluate_real as ER
from geoproc.errors import UsageError


@pytest.mark.parametrize(
    ("row", "met"),
    [
        ({"geoproc": 0.96, "target": ">= 0.95"}, True),
        ({"geoproc": 0.94, "target": ">= 0.95"}, False),
        ({"geoproc": 0.25, "target": "<= 0.3 K"}, True),
        ({"geoproc": 0.31, "target": "<= 0.3 K"}, False),
        ({"geoproc": 0.2, "coverage_1sigma": 0.68, "target": "60-75 %"}, True),
        ({"geoproc": 0.2, "coverage_1sigma": 0.95, "target": "60-75 %"}, False),
        ({"geoproc": float("nan"), "target": ">= 0.9"}, None),
        ({"geoproc": 0.5, "target": ""}, None),
    ],
)
def test_target_met_reads_the_stated_target(row, met):
    assert ER.target_met(row) is met


def test_candidates_are_each_folder_and_its_children(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "file.txt").write_text("x")
    assert ER.candidate_folders([tmp_path]) == [tmp_path, tmp_path / "a", tmp_path / "b"]
    with pytest.raises(UsageError, match="--real"):
        ER.candidate_folders([tmp_path / "file.txt"])


def test_rows_from_every_product_deduplicated_and_scored(tmp_path, monkeypatch):
    calls = {}

    def fake(name, score):
        mod = types.ModuleType(f"geoproc.products.{name}.real_cases")

        def evaluate_real(folders):
            calls[name] = list(folders)
            row = {"product": name, "case": "c1", "metric": "m", "geoproc": score,
                   "baselines": {"simple": 0.5}, "target": ">= 0.9"}  # fmt: skip
            return [row, dict(row)]  # the same case found twice counts once

        mod.evaluate_real = evaluate_real
        monkeypatch.setitem(sys.modules, f"geoproc.products.{name}.real_cases", mod)

    fake("flood", 0.93)
    fake("canopy", 0.80)
    (tmp_path / "case").mkdir()
    rows = ER.evaluate_real([tmp_path], products=("flood", "canopy"))
    assert [(r["product"], r["target_met"]) for r in rows] == [("flood", True), ("canopy", False)]
    assert calls["flood"] == [tmp_path, tmp_path / "case"]
    table = ER.format_table(rows)
    assert "| flood | c1 | real | m | 0.930 | simple: 0.500 | >= 0.9 | yes |" in table
    assert "| canopy | c1 | real | m | 0.800 | simple: 0.500 | >= 0.9 | **no** |" in table


def test_coverage_targets_are_not_fooled_by_digits_in_names():
    row = {"geoproc": 1.0, "coverage_1sigma": 0.589, "target": "coverage_1sigma 60-75 %"}
    assert ER.target_met(row) is False
    assert ER.target_met({**row, "coverage_1sigma": 0.70}) is True
