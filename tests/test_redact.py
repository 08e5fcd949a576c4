"""Secrets (S3 keys, the catalog token) never appear in logs, reports, outputs or errors.

Sentinel values are set in the environment; every byte a run prints, logs and writes is
searched for them.
"""

from __future__ import annotations

import contextlib
import json
import logging
from http.server import BaseHTTPRequestHandler

import pytest

from geoproc.errors import CatalogError, CredentialsError
from geoproc.request import check_catalog
from geoproc.settings import get_settings
from tests.helpers.servers import http_server

S3_KEY = "AKIASENTINELKEY00001"
S3_SECRET = "sEcReT-sentinel-s3-9f8e7d6c5b4a"
TOKEN = "tok-sentinel-catalog-0123456789"
SENTINELS = (S3_KEY, S3_SECRET, TOKEN)


def _assert_clean(blob: bytes | str, where: str) -> None:
    data = blob.encode() if isinstance(blob, str) else blob
    for secret in SENTINELS:
        assert secret.encode() not in data, f"{secret[:8]}... found in {where}"


@contextlib.contextmanager
def _token_catalog(token: str):
    """A minimal STAC landing page that answers only with the right bearer token."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            auth = self.headers.get("Authorization", "")
            seen.append(auth)
            if auth != f"Bearer {token}":
                body = json.dumps({"detail": f"bad token in header {auth!r}"}).encode()
                self.send_response(401)
            else:
                body = json.dumps({"type": "Catalog", "id": "x", "links": []}).encode()
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with http_server(Handler) as url:
        yield url, seen


def test_settings_never_print_secrets(monkeypatch):
    monkeypatch.setenv("GEOPROC_S3_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("GEOPROC_S3_SECRET_ACCESS_KEY", S3_SECRET)
    monkeypatch.setenv("GEOPROC_CATALOG_TOKEN", TOKEN)
    settings = get_settings()
    _assert_clean(repr(settings) + str(settings) + settings.model_dump_json(), "settings")
    assert settings.catalog_headers() == {"Authorization": f"Bearer {TOKEN}"}


def test_catalog_token_is_sent_and_never_echoed(monkeypatch):
    with _token_catalog(TOKEN) as (url, seen):
        monkeypatch.setenv("GEOPROC_CATALOG_TOKEN", TOKEN)
        assert check_catalog(url)["type"] == "Catalog"
        assert seen[-1] == f"Bearer {TOKEN}"
        monkeypatch.setenv("GEOPROC_CATALOG_TOKEN", TOKEN + "-wrong")
        with pytest.raises(CredentialsError) as err:
            check_catalog(url)
    assert "GEOPROC_CATALOG_TOKEN" in str(err.value) and err.value.exit_code == 1
    _assert_clean(str(err.value), "the credentials error")


def test_search_errors_do_not_echo_the_token(monkeypatch, tmp_path):
    from geoproc.catalog.search import search_tiles
    from geoproc.grid import parse_tile_id

    tile = parse_tile_id("32N_0188_1371", tile_size_px=16, resolution=30.0)
    with _token_catalog("another") as (url, _):
        monkeypatch.setenv("GEOPROC_CATALOG_TOKEN", TOKEN)
        with pytest.raises((CredentialsError, CatalogError)) as err:
            search_tiles(
                url, [tile], collections=["HLSL30_2.0"], start="2024-01-01", end="2024-01-02"
            )
    _assert_clean(str(err.value), "the search error")
    assert url in str(err.value)


def test_catalog_url_credentials_are_redacted(monkeypatch):
    from geoproc.redact import redact_url

    url = f"https://user:{TOKEN}@stac.example.org/v1?token={TOKEN}&limit=5"
    shown = redact_url(url)
    _assert_clean(shown, "redacted URL")
    assert "stac.example.org/v1" in shown and "limit=5" in shown


@pytest.mark.slow
def test_whole_run_with_sentinel_secrets_leaks_nothing(
    sample_archive_small, stac_api_small, s3_endpoint, monkeypatch, capfd, caplog
):
    """One tile through cube, products and publish to S3, logging at DEBUG."""
    import boto3

    from geoproc.pipeline import run_pipeline
    from geoproc.request import RunRequest
    from tests.helpers.servers import create_bucket

    create_bucket(s3_endpoint, "secrets")
    monkeypatch.setenv("GEOPROC_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("GEOPROC_S3_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("GEOPROC_S3_SECRET_ACCESS_KEY", S3_SECRET)
    monkeypatch.setenv("GEOPROC_CATALOG_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    request = RunRequest.create(
        products="flood,lst", aoi="32N_0188_1371", start="2024-06-01", end="2024-06-30",
        catalog=stac_api_small, out="s3://secrets/out", options={"tile_size_px": 128},
    )  # fmt: skip
    report = run_pipeline(request)
    _assert_clean(json.dumps(report, default=str), "the run report")
    printed = capfd.readouterr()
    _assert_clean(printed.out + printed.err, "stdout/stderr")
    _assert_clean("\n".join(r.getMessage() for r in caplog.records), "the log records")
    s3 = boto3.client(
        "s3", endpoint_url=s3_endpoint, aws_access_key_id="testing",
        aws_secret_access_key="testing", region_name="us-east-1",
    )  # fmt: skip
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="secrets")
        for o in page.get("Contents", [])
    ]
    assert any(k.endswith(".tif") for k in keys) and any(k.endswith("report.json") for k in keys)
    for key in keys:
        _assert_clean(s3.get_object(Bucket="secrets", Key=key)["Body"].read(), key)
        _assert_clean(key, "object keys")


def test_debug_logs_of_libraries_are_scrubbed(monkeypatch, caplog):
    """requests logs headers at DEBUG; the record reaching any handler has no token."""
    monkeypatch.setenv("GEOPROC_CATALOG_TOKEN", TOKEN)
    get_settings()
    caplog.set_level(logging.DEBUG)
    logging.getLogger("pystac_client.stac_api_io").debug(
        "GET x Headers: %s", {"Authorization": f"Bearer {TOKEN}"}
    )
    messages = [r.getMessage() for r in caplog.records]
    assert any("Bearer ***" in m for m in messages)
    _assert_clean("\n".join(messages), "log records")
