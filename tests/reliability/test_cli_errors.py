"""The CLI turns storage failures that outlived their retries into exit 1 with the endpoint named."""

from __future__ import annotations

import pytest
from botocore.exceptions import EndpointConnectionError

from geoproc import cli


@pytest.mark.parametrize(
    "error",
    [
        OSError("[Errno 111] Connection refused"),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9/bucket"),
    ],
)
def test_storage_failure_exits_1_naming_the_endpoint(monkeypatch, capsys, error):
    monkeypatch.setenv("GEOPROC_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("GEOPROC_S3_SECRET_ACCESS_KEY", "sentinel-secret-value-42")

    def fail(args):
        raise error

    parser = cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: _with_func(parser(), fail))
    assert cli.main(["models", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("geoproc: error: storage at http://127.0.0.1:9 failed")
    assert "Traceback" not in err and "sentinel-secret-value-42" not in err


def _with_func(parser, func):
    original = parser.parse_args

    def parse_args(argv=None):
        args = original(argv)
        args.func = func
        return args

    parser.parse_args = parse_args
    return parser
