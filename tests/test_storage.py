"""Storage layer: URL parsing, credentials, and real round trips on local disk and S3 (moto)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from geoproc import storage
from geoproc.errors import CredentialsError, StorageURLError


@pytest.mark.parametrize(
    "url, scheme, path_end",
    [
        ("/tmp/x/out", "file", "/tmp/x/out"),
        ("file:///tmp/y", "file", "/tmp/y"),
        ("s3://bkt/a/b/", "s3", "bkt/a/b"),
    ],
)
def test_parse_url(url, scheme, path_end):
    loc = storage.parse_url(url)
    assert loc.scheme == scheme
    assert loc.path.endswith(path_end)


@pytest.mark.parametrize(
    "bad", ["gs://bucket/x", "ftp://host/x", "s3:///nobucket", "", "file://host/x"]
)
def test_bad_urls_name_the_fix(bad):
    with pytest.raises(StorageURLError) as err:
        storage.parse_url(bad)
    assert "s3://" in str(err.value) or "file" in str(err.value)


def test_missing_credentials_is_clear_and_secret_free(monkeypatch, tmp_path):
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "GEOPROC_S3_ACCESS_KEY_ID",
        "GEOPROC_S3_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(CredentialsError, match="GEOPROC_S3_ACCESS_KEY_ID"):
        storage.storage_options(storage.parse_url("s3://bkt/p"))
    monkeypatch.setenv("GEOPROC_S3_ACCESS_KEY_ID", "AKIA-SENTINEL-KEY")
    with pytest.raises(CredentialsError) as err:
        storage.storage_options(storage.parse_url("s3://bkt/p"))
    assert "AKIA-SENTINEL-KEY" not in str(err.value)
    assert "secret access key" in str(err.value)


def _roundtrip(url: str) -> xr.Dataset:
    data = np.arange(24, dtype="float32").reshape(2, 3, 4)
    ds = xr.Dataset({"red": (("time", "y", "x"), data)})
    ds.to_zarr(storage.zarr_store(url), mode="w", consolidated=True, zarr_format=3)
    return xr.open_zarr(storage.zarr_store(url, read_only=True), consolidated=True).load()


def test_zarr_roundtrip_local(tmp_path):
    back = _roundtrip(str(tmp_path / "a.zarr"))
    assert back["red"].values.sum() == sum(range(24))


@pytest.mark.integration
def test_zarr_roundtrip_s3(s3_bucket):
    url = f"s3://{s3_bucket}/cubes/a.zarr"
    back = _roundtrip(url)
    np.testing.assert_array_equal(back["red"].values.ravel(), np.arange(24, dtype="float32"))
    assert storage.exists(url + "/zarr.json")


@pytest.mark.integration
def test_atomic_small_objects_local_and_s3(tmp_path, s3_bucket):
    for url in (str(tmp_path / "m" / "marker.json"), f"s3://{s3_bucket}/m/marker.json"):
        storage.write_bytes_atomic(url, b'{"a": 1}')
        storage.write_bytes_atomic(url, b'{"a": 2}')
        assert storage.read_bytes(url) == b'{"a": 2}'
    assert not list((tmp_path / "m").glob(".*tmp*"))


@pytest.mark.integration
def test_s3_objects_carry_their_content_type(s3_bucket):
    """A published viewer served from S3 loads only if its css/js/html say what they are."""
    fs, _ = storage.filesystem(f"s3://{s3_bucket}/x")
    expected = {"index.html": "text/html", "leaflet.css": "text/css", "t.png": "image/png"}
    for name in (*expected, "chunk.0"):
        storage.write_bytes_atomic(f"s3://{s3_bucket}/site/{name}", b"x")
    for name, content_type in expected.items():
        assert fs.info(f"{s3_bucket}/site/{name}")["ContentType"] == content_type
    assert storage.read_bytes(f"s3://{s3_bucket}/site/chunk.0") == b"x"  # unknown: plain PUT


def test_remove_partial_writes_only_touches_orphans(tmp_path):
    store = tmp_path / "a.zarr"
    (store / "red" / "c" / "0").mkdir(parents=True)
    keep = store / "red" / "c" / "0" / "0"
    keep.write_bytes(b"chunk")
    (store / "red" / "c" / "0" / "1.4f2a.partial").write_bytes(b"torn")
    assert storage.remove_partial_writes(str(store)) == 1
    assert sorted(p.name for p in store.rglob("*") if p.is_file()) == ["0"]
    assert storage.remove_partial_writes("s3://bucket/a.zarr") == 0


@pytest.mark.parametrize(
    "url, needle",
    [
        ("s3://bucket/../../etc", "'..' segment"),
        ("s3://bucket/a/./b", "'.' segment"),
        ("s3://bucket/a//b", "empty segment"),
        ("s3://Bad_Bucket!!/x", "not a valid S3 bucket name"),
        ("s3://ab/x", "not a valid S3 bucket name"),
        ("s3://192.168.1.1/x", "not a valid S3 bucket name"),
        ("s3://my..bucket/x", "not a valid S3 bucket name"),
        ("s3://bucket/x?versionId=1", "'?'"),
    ],
)
def test_unsafe_s3_urls_are_usage_errors_naming_out(url, needle):
    with pytest.raises(StorageURLError) as err:
        storage.parse_url(url)
    assert needle in str(err.value) and str(err.value).startswith("--out ")
    assert err.value.exit_code == 2


@pytest.mark.parametrize(
    "url, path",
    [("s3://bucket/runs/2024/", "bucket/runs/2024"), ("s3://my.bucket-1", "my.bucket-1")],
)
def test_valid_s3_urls_keep_bucket_and_prefix(url, path):
    assert storage.parse_url(url).path == path


@pytest.mark.parametrize("out", ["s3://bucket/../../etc", "s3://Bad_Bucket!!/x"])
@pytest.mark.parametrize("command", ["run", "cube", "publish"])
def test_cli_refuses_unsafe_s3_out_with_exit_2_before_writing(
    command, out, tmp_path, monkeypatch, capsys
):
    from geoproc.cli import main

    monkeypatch.chdir(tmp_path)
    common = ["--aoi", "11.9,47.4,12.1,47.6", "--start", "2024-01-01", "--end", "2024-01-31"]
    argv = {
        "run": ["run", "flood", "--catalog", "http://127.0.0.1:9", *common],
        "cube": [
            "cube",
            "build",
            "--catalog",
            str(tmp_path),
            "--collections",
            "HLSL30_2.0",
            *common,
        ],
        "publish": ["publish"],
    }[command]
    assert main([*argv, "--out", out]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
