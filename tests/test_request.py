"""Run-request validation: each bad value fails with a message naming what to change."""

from __future__ import annotations

from datetime import date

import pytest

from geoproc.dev.stac_server import free_port
from geoproc.errors import (
    CatalogError,
    InvalidDateError,
    StorageURLError,
    UnknownNameError,
    UsageError,
)
from geoproc.request import RunRequest, check_catalog, parse_date_range, window_parameters

GOOD = dict(
    products="flood",
    aoi="11.9,47.4,12.1,47.6",
    start="2024-01-01",
    end="2024-12-31",
    catalog="http://127.0.0.1:1",
    out="/tmp/geoproc-test-out",
)


def test_good_request_parses():
    req = RunRequest.create(**GOOD | {"products": "flood,lst,flood"})
    assert req.products == ("flood", "lst")
    assert (req.start, req.end) == (date(2024, 1, 1), date(2024, 12, 31))
    assert req.out.scheme == "file"


@pytest.mark.parametrize(
    "change, error, needle",
    [
        ({"start": "2024-13-01"}, InvalidDateError, "YYYY-MM-DD"),
        ({"start": "yesterday"}, InvalidDateError, "--start"),
        ({"start": "2024-06-01", "end": "2024-05-01"}, InvalidDateError, "before --start"),
        ({"products": "floods"}, UnknownNameError, "flood, lst, canopy"),
        ({"products": ""}, UsageError, "flood"),
        ({"collections": "HLSL30_2.0,landsat-9000"}, UnknownNameError, "--collections"),
        ({"out": "gs://bucket/x"}, StorageURLError, "s3://"),
    ],
)
def test_bad_values_name_the_argument(change, error, needle):
    with pytest.raises(error) as err:
        RunRequest.create(**GOOD | change)
    assert needle in str(err.value)
    assert err.value.exit_code == 2


def test_date_range_inclusive_single_day():
    assert parse_date_range("2024-02-29", "2024-02-29") == (date(2024, 2, 29), date(2024, 2, 29))


def test_catalog_that_does_not_answer():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CatalogError) as err:
        check_catalog(url, timeout=2)
    assert url in str(err.value) and "--catalog" in str(err.value)
    assert err.value.exit_code == 1


def test_catalog_must_be_http():
    with pytest.raises(UsageError, match="--catalog"):
        check_catalog("ftp://example.org/stac")


@pytest.mark.parametrize(
    "start, end, expected",
    [
        ("-P30D", "2024-06-30", (date(2024, 5, 31), date(2024, 6, 30))),
        ("P30D", "2024-06-30", (date(2024, 5, 31), date(2024, 6, 30))),
        ("-P2W", "2024-03-01", (date(2024, 2, 16), date(2024, 3, 1))),
        ("-P1M", "2024-03-31", (date(2024, 2, 29), date(2024, 3, 31))),  # clipped to Feb 29
        ("-P1Y2M3D", "2024-06-30", (date(2023, 4, 27), date(2024, 6, 30))),
        ("-P0D", "2024-06-30", (date(2024, 6, 30), date(2024, 6, 30))),
        ("-p30d", "2024-06-30", (date(2024, 5, 31), date(2024, 6, 30))),
    ],
)
def test_rolling_window_is_a_duration_before_end(start, end, expected):
    assert parse_date_range(start, end) == expected


@pytest.mark.parametrize("end", [None, "now", "NOW", ""])
def test_rolling_window_ends_today_without_end(end):
    today = date(2025, 1, 10)
    assert parse_date_range("-P10D", end, today=today) == (date(2024, 12, 31), today)


@pytest.mark.parametrize("start", ["-P", "-PT6H", "-P1.5D", "-P30", "P-30D", "-P30DX", "Past"])
def test_bad_duration_names_start(start):
    with pytest.raises(InvalidDateError, match="--start") as err:
        RunRequest.create(**GOOD | {"start": start})
    assert "-P30D" in str(err.value) and err.value.exit_code == 2


def test_duration_before_year_one_names_start():
    with pytest.raises(InvalidDateError, match="--start") as err:
        parse_date_range("-P3000Y", "2024-01-01")
    assert err.value.exit_code == 2


def test_deployment_keeps_the_window_relative():
    assert window_parameters("-P30D", None) == ("-P30D", "now")
    assert window_parameters("-P1M", "2024-06-30") == ("-P1M", "2024-06-30")
    assert window_parameters(date(2024, 1, 1), "2024-02-01") == ("2024-01-01", "2024-02-01")
    with pytest.raises(InvalidDateError, match="--start"):
        window_parameters("-P30Q", "now")


def test_request_resolves_a_window_when_created():
    req = RunRequest.create(**GOOD | {"start": "-P7D", "end": "2024-03-03"})
    assert (req.start, req.end) == (date(2024, 2, 25), date(2024, 3, 3))


def test_catalog_kinds_are_accepted_without_network(tmp_path):
    (tmp_path / "item.json").write_text("{}")
    for catalog in (str(tmp_path), "s3://bucket/stac/catalog.json", "https://x.org/stac/"):
        assert RunRequest.create(**GOOD | {"catalog": catalog}).catalog == catalog.rstrip("/")
    with pytest.raises(UsageError, match="--catalog") as err:
        RunRequest.create(**GOOD | {"catalog": str(tmp_path / "missing")})
    assert err.value.exit_code == 2
