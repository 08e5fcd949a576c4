"""`geoproc.cli.classify_error`: a missing file is never blamed on storage or the endpoint."""

from __future__ import annotations

import errno

from geoproc.cli import classify_error
from geoproc.errors import MissingFileError, StorageFailure


def test_missing_file_without_a_filename_is_a_missing_file_not_a_disk_failure(tmp_path):
    """The shape of the original bug: FileNotFoundError("No local STAC schemas ...")."""
    error = FileNotFoundError("No local STAC schemas found: set GEOPROC_STAC_SCHEMAS")
    for out in (str(tmp_path), "s3://bucket/run"):
        classified = classify_error(error, out=out)
        assert isinstance(classified, MissingFileError), out
        assert "No local STAC schemas found" in str(classified)
        assert "endpoint" not in str(classified) and "free space" not in str(classified)


def test_relative_local_path_with_s3_out_names_the_path_not_the_endpoint():
    error = FileNotFoundError(errno.ENOENT, "No such file or directory", "aoi/region.geojson")
    classified = classify_error(error, out="s3://bucket/run")
    assert isinstance(classified, MissingFileError)
    assert "aoi/region.geojson does not exist" in str(classified)
    assert "endpoint" not in str(classified)


def test_missing_object_in_the_output_bucket_is_a_storage_failure():
    """s3fs names objects "bucket/key": one in --out's bucket is the store's, not a local file."""
    error = FileNotFoundError(errno.ENOENT, "Not found", "bucket/run/cubes/T32UPU.zarr/.zmetadata")
    classified = classify_error(error, out="s3://bucket/run")
    assert isinstance(classified, StorageFailure)
    assert "endpoint" in str(classified)


def test_permission_error_on_a_relative_local_path_blames_the_local_disk():
    error = PermissionError(errno.EACCES, "Permission denied", "reports/run.json")
    classified = classify_error(error, out="s3://bucket/run")
    assert isinstance(classified, StorageFailure)
    assert "local disk at reports/run.json" in str(classified)


def test_absolute_local_path_is_local_even_when_it_starts_with_the_bucket_name():
    error = FileNotFoundError(errno.ENOENT, "No such file or directory", "/data/aoi.geojson")
    classified = classify_error(error, out="s3://data/run")
    assert isinstance(classified, MissingFileError)
    assert "/data/aoi.geojson does not exist" in str(classified)
