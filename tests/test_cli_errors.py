"""Each kind of failure gets its own class, message and exit code; only storage names an endpoint."""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import pytest
from botocore.exceptions import EndpointConnectionError

from geoproc import cli
from geoproc.errors import (
    InternalError,
    MissingFileError,
    NetworkError,
    SchemaError,
    StorageFailure,
)

ENDPOINT_HINT = "Check that the endpoint is reachable"


def _main_failing_with(monkeypatch, error: BaseException, argv: list[str]) -> int:
    """Run `geoproc ARGV` whose command raises `error` (the parser is the real one)."""
    real = cli.build_parser

    def build(argv_=None):
        parser = real(argv_)
        original = parser.parse_args

        def parse_args(a=None):
            args = original(a)
            args.func = lambda _args: (_ for _ in ()).throw(error)
            return args

        parser.parse_args = parse_args
        return parser

    monkeypatch.setattr(cli, "build_parser", build)
    return cli.main(argv)


RUN = ["run", "flood", "--catalog", "http://127.0.0.1:9", "--aoi", "1,1,2,2"]
RUN += ["--start", "2024-01-01", "--end", "2024-01-02"]


def test_missing_local_file_exits_3_naming_the_path(monkeypatch, capsys, tmp_path):
    missing = tmp_path / "nope" / "aoi.geojson"
    error = FileNotFoundError(errno.ENOENT, "No such file or directory", str(missing))
    assert _main_failing_with(monkeypatch, error, [*RUN, "--out", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert f"{missing} does not exist" in err and ENDPOINT_HINT not in err
    assert MissingFileError.exit_code == 3


def test_schema_problem_exits_4_and_names_the_schema(monkeypatch, capsys, tmp_path):
    from geoproc.stac_schemas import StacValidationError, validate_stac

    card = json.loads(
        (Path(cli.__file__).parent / "inference" / "cards" / "tiny-fcn-1.0.0.json").read_text()
    )
    del card["properties"]["mlm:input"]
    with pytest.raises(StacValidationError) as err:
        validate_stac(card)
    assert isinstance(err.value, SchemaError) and "mlm" in str(err.value)
    assert _main_failing_with(monkeypatch, err.value, [*RUN, "--out", str(tmp_path)]) == 4
    assert "mlm:input" in capsys.readouterr().err
    # a schema geoproc does not ship is a schema problem too, naming the override
    card = json.loads(
        (Path(cli.__file__).parent / "inference" / "cards" / "tiny-fcn-1.0.0.json").read_text()
    )
    card["stac_extensions"].append("https://stac-extensions.github.io/not-shipped/v9/schema.json")
    with pytest.raises(SchemaError, match="GEOPROC_STAC_SCHEMAS"):
        validate_stac(card)


def test_internal_bug_exits_70_with_traceback_in_a_file(monkeypatch, capsys, tmp_path):
    assert _main_failing_with(monkeypatch, KeyError("tile"), [*RUN, "--out", str(tmp_path)]) == 70
    err = capsys.readouterr().err
    assert "internal error (a bug in geoproc" in err and "KeyError" in err
    assert "Traceback" not in err and ENDPOINT_HINT not in err
    saved = Path(re.search(r"traceback is in (\S+);", err)[1])
    assert "KeyError: 'tile'" in saved.read_text()
    saved.unlink()
    assert InternalError.exit_code == 70


def test_s3_failure_exits_5_naming_the_endpoint(monkeypatch, capsys):
    monkeypatch.setenv("GEOPROC_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("GEOPROC_S3_SECRET_ACCESS_KEY", "sentinel-secret-value-42")
    error = EndpointConnectionError(endpoint_url="http://127.0.0.1:9/bucket")
    assert _main_failing_with(monkeypatch, error, [*RUN, "--out", "s3://bucket/x"]) == 5
    err = capsys.readouterr().err
    assert err.startswith("geoproc: error: storage at http://127.0.0.1:9 failed")
    assert ENDPOINT_HINT in err
    assert "Traceback" not in err and "sentinel-secret-value-42" not in err
    # s3fs turns a refused connection into a plain OSError: still the endpoint, not the disk
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    assert _main_failing_with(monkeypatch, refused, [*RUN, "--out", "s3://bucket/x"]) == 5
    assert "storage at http://127.0.0.1:9" in capsys.readouterr().err


def test_local_disk_failure_exits_5_naming_the_path_not_an_endpoint(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("GEOPROC_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    chunk = tmp_path / "cubes" / "32N_0001_0001.zarr" / "red" / "c" / "0"
    full = OSError(errno.ENOSPC, "No space left on device", str(chunk))
    assert _main_failing_with(monkeypatch, full, [*RUN, "--out", str(tmp_path)]) == 5
    err = capsys.readouterr().err
    assert f"local disk at {chunk} failed: No space left on device" in err
    assert "free space" in err and "endpoint" not in err and "127.0.0.1:9" not in err
    # an OSError without a file name names the --out folder
    nameless = OSError(errno.EIO, "Input/output error")
    assert _main_failing_with(monkeypatch, nameless, [*RUN, "--out", str(tmp_path)]) == 5
    assert f"local disk at {tmp_path} failed" in capsys.readouterr().err
    assert StorageFailure.exit_code == 5


def test_network_failure_exits_6_without_blaming_storage(monkeypatch, capsys, tmp_path):
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    assert _main_failing_with(monkeypatch, refused, [*RUN, "--out", str(tmp_path)]) == 6
    err = capsys.readouterr().err
    assert "network connection failed" in err and "--catalog" in err
    assert "storage" not in err and ENDPOINT_HINT not in err
    assert NetworkError.exit_code == 6


def test_exit_codes_are_distinct():
    codes = [c.exit_code for c in (MissingFileError, SchemaError, StorageFailure, NetworkError)]
    assert len(set(codes + [InternalError.exit_code, 1, 2])) == 7


def test_invalid_setting_is_a_usage_error_naming_the_variable(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("GEOPROC_MAX_PLAN_TILES", "many")
    argv = ["plan", "flood", "--aoi", "10,45,12,47", "--start", "2024-01-01", "--end", "2024-01-31"]
    assert cli.main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "GEOPROC_MAX_PLAN_TILES" in err and "internal error" not in err
