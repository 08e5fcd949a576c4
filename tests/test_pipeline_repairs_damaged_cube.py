"""A damaged cube chunk after a good run: the rerun repairs it and its report says so.

End to end through `run_pipeline` (the CLI's and the flows' stage function), on a copy of the
session's small run so the shared stores stay untouched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from geoproc.pipeline import run_pipeline
from geoproc.run_report import cube_repairs


def _cube_files(out: Path) -> dict[str, bytes]:
    root = out / "cubes"
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_rerun_repairs_a_truncated_chunk_and_reports_it(
    small_run, sample_archive_small, stac_api_small, run_request, tmp_path
):
    clean_out, _ = small_run
    out = tmp_path / "out"
    shutil.copytree(clean_out, out)
    clean = _cube_files(clean_out)
    chunk = next(p for p in sorted((out / "cubes").rglob("red/*.0.0")) if p.stat().st_size > 0)
    chunk.write_bytes(b"")  # what a flaky disk leaves behind

    report = run_pipeline(run_request(sample_archive_small, stac_api_small, out))

    tile = chunk.relative_to(out / "cubes").parts[0].removesuffix(".zarr")
    repairs = cube_repairs(report)
    assert [r["tile"] for r in repairs] == [tile], repairs
    assert repairs[0]["outcome"] == "repaired"
    assert _cube_files(out) == clean  # rewritten from its sources: the clean run's bytes
    # the repaired step has the same sources and pixels, so no product is recomputed
    assert all(r["status"] == "skipped" for r in report["products"].values())
