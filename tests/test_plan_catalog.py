"""`--catalog` outside `run`: `plan` refuses a value no run would accept (exit 2 naming
--catalog), and `cube build --help` names the three kinds `run` accepts.

Why: a plan reads nothing, but an operator who plans with the run's arguments should learn
of a mistyped --catalog then, not hours later when the run starts.
"""

from __future__ import annotations

import pytest

from geoproc.cli import main

ARGV = ["plan", "lst", "--aoi", "10,45,10.2,45.2", "--start", "2024-06-01", "--end", "2024-06-30",
        "--out", "s3://bucket/x"]  # fmt: skip


def test_plan_refuses_an_unclassifiable_catalog(capsys):
    assert main([*ARGV, "--catalog", "no/such"]) == 2
    captured = capsys.readouterr()
    assert "--catalog 'no/such'" in captured.err and captured.out == ""


@pytest.mark.parametrize(
    "catalog",
    ["https://example.org/stac/v1", "s3://bucket/cat/catalog.json", "FOLDER"],
)
def test_plan_accepts_each_kind_without_reading_it(catalog, tmp_path, capsys):
    catalog = str(tmp_path) if catalog == "FOLDER" else catalog
    assert main([*ARGV, "--catalog", catalog]) == 0
    assert capsys.readouterr().out.startswith("tiles")


def test_cube_build_help_names_the_three_kinds(capsys):
    with pytest.raises(SystemExit) as done:
        main(["cube", "build", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "static catalog.json (path, s3:// or http(s)) or folder of item files" in text
