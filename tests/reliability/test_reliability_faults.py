"""Transient faults on the wire: a regional run through fault-injecting proxies.

The sample archive's COGs are served over HTTP (`range_file_server`), the STAC API and the
output bucket (moto) sit behind `fault_proxy`. With 10 % of requests answered by 503, 429,
a TCP reset or a slow reply, the run must write the same bytes as a fault-free run; with
every COG request failing it must stop within a bounded time, name the endpoint, and
publish nothing.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest
import rasterio

from geoproc.cube.assemble import CubeOptions, read_step
from geoproc.errors import EndpointUnavailableError
from tests.helpers.faults import FaultPlan, fault_proxy, range_file_server
from tests.helpers.servers import s3_client

TILE = "32N_0188_1371"


def _request(catalog: str, out: str, *, products: str = "flood,lst"):
    from geoproc.request import RunRequest

    return RunRequest.create(
        products=products, aoi=TILE, start="2024-06-01", end="2024-07-31", catalog=catalog,
        out=out, options={"tile_size_px": 128},
    )  # fmt: skip


def _bucket_digest(endpoint: str, bucket: str) -> dict[str, str]:
    s3 = s3_client(endpoint)
    digest = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if "/runs/" in f"/{key}":
                continue  # the run report holds timings and the catalog's port
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            digest[key] = hashlib.sha256(body).hexdigest()
    return digest


def _empty_bucket(endpoint: str, bucket: str) -> None:
    s3_client(endpoint, "resource").Bucket(bucket).objects.all().delete()


def _first_l30_step(archive, base_url):
    """One L30 time step of the sample archive whose hrefs point at `base_url`."""
    import json

    from geoproc.catalog.search import group_time_steps
    from geoproc.catalog.sensors import profile_for
    from geoproc.grid import parse_tile_id

    tile = parse_tile_id(TILE, tile_size_px=128, resolution=30.0)
    from shapely.geometry import shape

    for path in sorted((archive / "items" / "HLSL30_2.0").glob("*.json")):
        item = json.loads(path.read_text())
        if shape(item["geometry"]).intersects(tile.footprint_lonlat):
            break
    for asset in item["assets"].values():
        rel = (path.parent / asset["href"]).resolve().relative_to(archive.resolve())
        asset["href"] = f"{base_url}/{rel.as_posix()}"
    step = group_time_steps([(item, profile_for("HLSL30_2.0"))], tile)[0]
    return step, tile


def test_cog_reads_survive_30_percent_faults_bit_exact(sample_archive_small):
    """GDAL's retries plus ours: every value equals the fault-free read (default suite, ~10 s)."""
    with range_file_server(sample_archive_small) as base:
        step, tile = _first_l30_step(sample_archive_small, base)
        clean = read_step(step, tile, ["red", "nir08", "lwir11"], CubeOptions())
        plan = FaultPlan(fraction=0.3, kinds=("503", "429", "reset"), seed=3)
        with fault_proxy(base, plan) as (url, log):
            faulty_step, _ = _first_l30_step(sample_archive_small, url)
            faulty = read_step(faulty_step, tile, ["red", "nir08", "lwir11"], CubeOptions())
    assert sum(log.faults.values()) >= 3, log.faults
    assert clean.errors == [] and faulty.errors == []
    for name, values in clean.bands.items():
        assert np.array_equal(values, faulty.bands[name], equal_nan=True), name
        assert np.isfinite(values).sum() > 1000
    assert np.array_equal(clean.qa["fmask"], faulty.qa["fmask"])


def test_cog_endpoint_that_always_fails_stops_the_read_and_is_named(sample_archive_small):
    """100 % faults: an error naming the endpoint within a bound - never a masked, 'clean' step."""
    with range_file_server(sample_archive_small) as base:
        plan = FaultPlan(fraction=1.0, kinds=("503", "429", "reset"))
        with fault_proxy(base, plan) as (url, log):
            step, tile = _first_l30_step(sample_archive_small, url)
            t0 = time.monotonic()
            with pytest.raises(EndpointUnavailableError) as err:
                read_step(step, tile, ["red"], CubeOptions(read_retries=1))
            elapsed = time.monotonic() - t0
    assert url in str(err.value) and "Fmask" in str(err.value)
    assert elapsed < 30, elapsed
    assert log.requests >= 4  # GDAL retried inside each attempt


@pytest.mark.slow
def test_regional_run_with_10_percent_faults_is_byte_identical(
    sample_archive_small, s3_endpoint, monkeypatch
):
    """STAC API, COG server and S3 all behind 10 % faults: same objects, same bytes."""
    from geoproc.dev.stac_server import serve_archive
    from geoproc.pipeline import run_pipeline
    from tests.helpers.servers import create_bucket

    bucket = "reliability-faults"
    create_bucket(s3_endpoint, bucket)
    monkeypatch.setenv("GEOPROC_S3_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("GEOPROC_S3_SECRET_ACCESS_KEY", "testing")
    figures = {}
    with range_file_server(sample_archive_small) as files:
        # Clean: no proxy anywhere.
        monkeypatch.setenv("GEOPROC_S3_ENDPOINT_URL", s3_endpoint)
        with serve_archive(sample_archive_small, asset_base_url=files) as api:
            t0 = time.monotonic()
            run_pipeline(_request(api, f"s3://{bucket}/out"))
            figures["clean_s"] = time.monotonic() - t0
        clean = _bucket_digest(s3_endpoint, bucket)
        _empty_bucket(s3_endpoint, bucket)

        plan = FaultPlan(fraction=0.1, seed=11, slow_s=1.0)
        with (
            fault_proxy(files, plan) as (cog_url, cog_log),
            fault_proxy(s3_endpoint, plan) as (s3_url, s3_log),
            serve_archive(sample_archive_small, asset_base_url=cog_url) as api,
            fault_proxy(api, plan) as (api_url, api_log),
        ):
            monkeypatch.setenv("GEOPROC_S3_ENDPOINT_URL", s3_url)
            t0 = time.monotonic()
            run_pipeline(_request(api_url, f"s3://{bucket}/out"))
            figures["faulty_s"] = time.monotonic() - t0
        faulty = _bucket_digest(s3_endpoint, bucket)
    figures.update(
        {
            name: (log.requests, dict(log.faults))
            for name, log in (("cog", cog_log), ("s3", s3_log), ("api", api_log))
        }
    )
    print("fault figures:", figures)
    assert sum(s3_log.faults.values()) > 10 and sum(cog_log.faults.values()) > 10
    assert any(k.startswith("out/cog/") for k in clean)
    assert any(k.startswith("out/cubes/") for k in clean)
    assert sorted(faulty) == sorted(clean)
    assert faulty == clean


@pytest.mark.slow
def test_regional_run_with_dead_cog_server_fails_fast_and_publishes_nothing(
    sample_archive_small, tmp_path
):
    from geoproc.dev.stac_server import serve_archive
    from geoproc.pipeline import run_pipeline

    out = tmp_path / "out"
    with range_file_server(sample_archive_small) as files:
        plan = FaultPlan(fraction=1.0, kinds=("503", "429", "reset"))
        with (
            fault_proxy(files, plan) as (cog_url, _),
            serve_archive(sample_archive_small, asset_base_url=cog_url) as api,
        ):
            t0 = time.monotonic()
            with pytest.raises(EndpointUnavailableError) as err:
                run_pipeline(_request(api, str(out)))
            elapsed = time.monotonic() - t0
    print(f"dead COG server: failed after {elapsed:.1f} s: {err.value}")
    assert cog_url in str(err.value)
    assert elapsed < 120
    assert not (out / "stac").exists() and not (out / "cog").exists()
    assert not (out / "products").exists()
    cube = out / "cubes" / f"{TILE}.zarr"
    if cube.exists():  # the layout may exist, but no step is marked complete
        import xarray as xr

        assert not bool(xr.open_zarr(cube)["time_complete"].any())


def test_rasterio_reads_the_served_cog_like_the_file(sample_archive_small):
    """The test server itself: Range reads through it give the file's bytes (guards the harness)."""
    path = sorted((sample_archive_small / "data").rglob("*.tif"))[0]
    rel = path.relative_to(sample_archive_small).as_posix()
    with (
        range_file_server(sample_archive_small) as base,
        rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"),
        rasterio.open(f"{base}/{rel}") as src,
    ):
        served = src.read()
    with rasterio.open(path) as src:
        assert np.array_equal(served, src.read())


@pytest.mark.parametrize(
    "kind",
    [
        "429",
        pytest.param("503", marks=pytest.mark.slow),
        pytest.param("reset", marks=pytest.mark.slow),
    ],
)
def test_s3_calls_survive_a_fifth_of_requests_failing(s3_endpoint, monkeypatch, kind):
    """botocore must retry each fault kind (a bare 429 on HEAD needs the legacy retry mode)."""
    from geoproc import storage
    from tests.helpers.servers import create_bucket

    create_bucket(s3_endpoint, f"flaky-{kind}")
    monkeypatch.setenv("GEOPROC_S3_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("GEOPROC_S3_SECRET_ACCESS_KEY", "testing")
    with fault_proxy(s3_endpoint, FaultPlan(fraction=0.2, kinds=(kind,), seed=5)) as (url, log):
        monkeypatch.setenv("GEOPROC_S3_ENDPOINT_URL", url)
        payloads = {f"s3://flaky-{kind}/k{i}": bytes([i]) * (100 + i) for i in range(6)}
        for key, data in payloads.items():
            storage.write_bytes_atomic(key, data)
        for key, data in payloads.items():
            assert storage.exists(key)
            assert storage.read_bytes(key) == data
    assert log.faults[kind] >= 2
