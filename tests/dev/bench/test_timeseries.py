"""`geoproc bench timeseries` runs end to end on a tiny cube and ends with its summary line."""

from __future__ import annotations

import re

from geoproc.cli import main


def test_bench_prints_the_table_and_the_speed_up_line_last(tmp_path, capsys):
    argv = ["bench", "timeseries", "--dates", "6", "--size", "96", "--points", "3",
            "--repeat", "1", "--space-chunk", "32", "--work", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"bench timeseries: speed-up \d+\.\d", lines[-1])
    assert any(line.startswith("one read per point") for line in lines)
    assert "copy: chunks (6, 32, 32)" in "\n".join(lines)
    assert not list(tmp_path.iterdir())  # the stores are removed
