"""Rolling windows on the command line (#15 item 3): `--start=-P30D` is 30 days before --end
(today when --end is omitted or `now`); a deployment stores the window, not the dates, so
each scheduled run covers the 30 days before its own day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from geoproc.cli import main

COMMON = ["--aoi", "11.9,47.4,12.1,47.6", "--out", "/tmp/geoproc-rolling-window-test"]


@pytest.mark.parametrize("command", [["run", "lst"], ["backfill", "lst"]])
@pytest.mark.parametrize("start", ["--start=-P30Q", "--start=-PT6H"])
def test_bad_duration_exits_2_naming_start(capsys, command, start):
    rc = main([*command, "--catalog", "http://127.0.0.1:9", start, *COMMON])
    err = capsys.readouterr().err
    assert rc == 2 and "--start" in err and "-P30D" in err and "Traceback" not in err


def test_deployment_stores_the_relative_window(monkeypatch):
    import flows.deployments

    stored: dict = {}
    monkeypatch.setattr(
        flows.deployments, "deploy_regional", lambda **kw: stored.update(kw) or "id-1"
    )
    rc = main(["deploy", "regional", "--cron", "0 6 * * *", "--catalog", "http://127.0.0.1:9",
               "--start=-P30D", *COMMON])  # fmt: skip
    assert rc == 0
    assert (stored["parameters"]["start"], stored["parameters"]["end"]) == ("-P30D", "now")


def test_deployment_stores_fixed_dates_as_dates(monkeypatch):
    import flows.deployments

    stored: dict = {}
    monkeypatch.setattr(
        flows.deployments, "deploy_regional", lambda **kw: stored.update(kw) or "id-1"
    )
    rc = main(["deploy", "regional", "--cron", "0 6 * * *", "--catalog", "http://127.0.0.1:9",
               "--start", "2024-01-01", "--end", "2024-12-31", *COMMON])  # fmt: skip
    assert rc == 0
    assert (stored["parameters"]["start"], stored["parameters"]["end"]) == (
        "2024-01-01",
        "2024-12-31",
    )


def test_a_stored_window_resolves_on_the_day_of_the_run():
    from geoproc.request import RunRequest

    request = RunRequest.create(
        products="lst", aoi="11.9,47.4,12.1,47.6", start="-P30D", end="now",
        catalog="http://127.0.0.1:9", out="/tmp/geoproc-rolling-window-test",
    )  # fmt: skip
    today = datetime.now(UTC).date()
    assert (request.start, request.end) == (today - timedelta(days=30), today)
