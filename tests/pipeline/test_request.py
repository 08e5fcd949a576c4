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
from geoproc.request import RunRequest, check_catalog, parse_date_range

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
