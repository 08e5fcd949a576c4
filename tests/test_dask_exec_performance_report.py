"""Dask's performance report of a run's Dask work is written beside the run report and linked."""

from __future__ import annotations

from geoproc import dask_exec
from geoproc.storage import parse_url


def test_performance_report_covers_the_tasks_run_between_start_and_finish(tmp_path):
    from distributed import LocalCluster

    folder = parse_url(str(tmp_path)).join("runs", "r1")
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        before = dask_exec.task_key("geoproc-before-start")
        assert dask_exec.run_on_scheduler(address, sum, [1], key=before) == 1
        perf = dask_exec.PerformanceReport(folder, address).start()
        key = dask_exec.task_key("geoproc-inside-report")
        assert dask_exec.run_on_scheduler(address, sum, [1, 2, 3], key=key) == 6
        links = perf.finish()
    (name,) = links.values()
    assert links == {"dask_performance_report": name}
    assert name.startswith("dask-performance-") and "/" not in name  # relative to runs/r1/
    page = (tmp_path / "runs" / "r1" / name).read_text()
    assert "<title>Dask Performance Report</title>" in page
    assert "geoproc-inside-report" in page and "geoproc-before-start" not in page
    assert "cdn.bokeh.org" not in page  # inline resources: opens offline like the run report
    assert perf.finish() == {}  # once only


def test_no_scheduler_no_report_no_link(tmp_path):
    folder = parse_url(str(tmp_path)).join("runs", "r1")
    assert dask_exec.PerformanceReport(folder, None).start().finish() == {}
    assert not (tmp_path / "runs").exists()
