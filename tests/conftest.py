"""Shared fixtures: a real S3 API server (moto), the small sample archive, a live STAC API."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def realdata() -> Path:
    """Real acquisitions copied into the repository (each folder has its LICENSE and README)."""
    from tests.helpers.paths import REALDATA

    return REALDATA


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    from tests.helpers.servers import moto_s3_server

    with moto_s3_server() as url:
        yield url


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch) -> str:
    """Point geoproc at the moto server with test credentials; yields the endpoint."""
    monkeypatch.setenv("GEOPROC_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("GEOPROC_S3_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("GEOPROC_S3_SECRET_ACCESS_KEY", "testing")
    return s3_endpoint


@pytest.fixture
def s3_bucket(s3_env) -> str:
    """A fresh, empty bucket on the moto server; yields its name."""
    import uuid

    from tests.helpers.servers import create_bucket

    name = f"test-{uuid.uuid4().hex[:12]}"
    create_bucket(s3_env, name)
    return name


@pytest.fixture(scope="session")
def sample_archive_small(tmp_path_factory) -> Path:
    """The `small` sample archive, generated once per test session."""
    from geoproc.dev.sample import create_archive

    cache = os.environ.get("GEOPROC_TEST_ARCHIVE_CACHE")
    out = Path(cache) if cache else tmp_path_factory.mktemp("archive") / "small"
    return Path(create_archive(out, seed=0, size="small"))


@pytest.fixture(scope="session")
def stac_api_small(sample_archive_small) -> str:
    """A live STAC API (rustac) over the small archive; yields its URL."""
    from geoproc.dev.stac_server import serve_archive

    with serve_archive(sample_archive_small) as url:
        yield url


@pytest.fixture(scope="session")
def run_request():
    """Factory for the demo's request on an archive: ``run_request(archive, catalog_url, out)``."""
    from tests.helpers.demo_request import run_request

    return run_request


@pytest.fixture(scope="session")
def small_run(sample_archive_small, stac_api_small, run_request, tmp_path_factory):
    """One whole in-process run of all products on the small archive: (out folder, report)."""
    from geoproc.pipeline import run_pipeline

    out = tmp_path_factory.mktemp("run") / "out"
    report = run_pipeline(run_request(sample_archive_small, stac_api_small, out))
    return out, report
