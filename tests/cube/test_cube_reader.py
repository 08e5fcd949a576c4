"""The reader seam: a fake `Reader` stands in for GDAL, so the rules are tested offline.

One place decides what a read failure means: credentials (raise, nothing complete),
transient (retry, then `EndpointUnavailableError`), anything else (mask and record).
"""

from __future__ import annotations

import numpy as np
import pytest

from geoproc.catalog.items import parse_item
from geoproc.catalog.search import group_time_steps
from geoproc.catalog.sensors import profile_for
from geoproc.cube.assemble import CubeOptions, read_step
from geoproc.cube.read import (
    AssetCredentialsError,
    AssetReader,
    RasterioReader,
    classify_message,
    is_transient,
)
from geoproc.errors import CredentialsError, EndpointUnavailableError, StoreError, UsageError
from tests.helpers.cube_items import TILE


class FakeReader:
    """Answers each href from a table: an array, or an exception to raise (a list: in turn)."""

    def __init__(self, answers: dict):
        self.answers = answers
        self.calls: list[str] = []

    def read(self, href, band, tile, *, resampling, nodata, options):
        self.calls.append(href)
        answer = self.answers[href.split("/")[-1]]
        if isinstance(answer, list):
            answer = answer.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer, nodata


def _step(catalog: str = "/local"):
    item = {
        "type": "Feature", "id": "g", "collection": "HLSL30_2.0", "geometry": None,
        "properties": {"datetime": "2024-06-01T10:00:00Z"},
        "assets": {k: {"href": f"https://data.example.org/g/{k}.tif"}
                   for k in ("B04", "B05", "Fmask")},
    }  # fmt: skip
    return group_time_steps([(parse_item(item, catalog=catalog), profile_for("HLSL30_2.0"))], TILE)[
        0
    ]


def _grid(value, dtype=np.int16):
    return np.full(TILE.shape, value, dtype)


def test_fake_reader_values_are_masked_scaled_and_mosaicked():
    fmask = _grid(0, np.uint8)
    fmask[0, :] = 1 << 1  # cloud on the first row
    reader = FakeReader({"Fmask.tif": fmask, "B04.tif": _grid(1234), "B05.tif": _grid(-9999)})
    data = read_step(_step(), TILE, ["red", "nir08"], CubeOptions(), reader=AssetReader(reader))
    assert np.isnan(data.bands["red"][0]).all()
    assert np.allclose(data.bands["red"][1:], 0.1234)
    assert np.isnan(data.bands["nir08"]).all()  # fill value -9999 -> NaN
    assert data.errors == [] and (data.qa["fmask"][0] == 2).all()


@pytest.mark.parametrize(
    "message",
    ["HTTP response code: 403", "HTTP response code: 401",
     "AccessDenied: Access Denied", "The AWS Access Key Id you provided does not exist (InvalidAccessKeyId)"],
)  # fmt: skip
def test_credentials_refusals_raise_and_name_the_catalog(message):
    reader = FakeReader({"Fmask.tif": _grid(0, np.uint8), "B04.tif": OSError(message)})
    with pytest.raises(AssetCredentialsError) as err:
        read_step(_step("https://stac.example.org/v1"), TILE, ["red"], CubeOptions(),
                  reader=AssetReader(reader, backoff=0))  # fmt: skip
    assert "https://stac.example.org/v1" in str(err.value) and "B04" in str(err.value)
    assert isinstance(err.value, CredentialsError) and not is_transient(err.value)


def test_transient_failures_are_retried_then_named():
    flaky = [OSError("HTTP response code: 503")] * 2 + [_grid(1000)]
    reader = FakeReader({"Fmask.tif": _grid(0, np.uint8), "B04.tif": flaky})
    data = read_step(
        _step(), TILE, ["red"], CubeOptions(), reader=AssetReader(reader, retries=2, backoff=0)
    )
    assert np.allclose(data.bands["red"], 0.1) and reader.calls.count(reader.calls[-1]) == 3
    down = FakeReader({"Fmask.tif": _grid(0, np.uint8), "B04.tif": OSError("Connection timed out")})
    with pytest.raises(EndpointUnavailableError, match="https://data.example.org"):
        read_step(
            _step(), TILE, ["red"], CubeOptions(), reader=AssetReader(down, retries=1, backoff=0)
        )


def test_permanent_failures_are_masked_and_recorded():
    reader = FakeReader(
        {"Fmask.tif": _grid(0, np.uint8), "B04.tif": OSError("HTTP response code: 404")}
    )
    data = read_step(_step(), TILE, ["red"], CubeOptions(), reader=AssetReader(reader, backoff=0))
    assert np.isnan(data.bands["red"]).all()
    assert [(e["asset"], e["error"]) for e in data.errors] == [("B04", "HTTP response code: 404")]


def test_one_transient_rule_for_cube_and_flows():
    assert classify_message("CURL error: Connection reset by peer") == "transient"
    assert classify_message("HTTP response code: 429") == "transient"
    assert classify_message("HTTP response code: 403") == "credentials"
    assert classify_message("not a TIFF file") == "permanent"
    assert is_transient(ConnectionResetError("reset by peer"))
    assert is_transient(EndpointUnavailableError("cog server gave up"))
    assert not is_transient(UsageError("bad --aoi, connection refused"))  # usage never retries
    assert not is_transient(StoreError("store locked"))
    assert is_transient(RuntimeError("read timed out"))


@pytest.mark.parametrize(
    ("dx", "dy", "shape"),
    [(-300, 300, (80, 80)), (600, -900, (50, 70)), (-3000, 3000, (10, 10)), (0, 0, (64, 64))],
)
def test_pure_shift_fast_path_equals_the_per_pixel_mapping(dx, dy, shape, monkeypatch):
    from affine import Affine
    from pyproj import CRS

    from geoproc.cube import read

    wkt = CRS.from_epsg(TILE.epsg).to_wkt()
    x0, _, _, y1 = TILE.bounds
    transform = tuple(Affine(30.0, 0, x0 + dx, 0, -30.0, y1 + dy))[:6]
    fast = read._pure_shift(wkt, transform, shape, TILE)
    read._pixel_map.cache_clear()
    monkeypatch.setattr(read, "_pure_shift", lambda *a: False)
    general = read._pixel_map(wkt, transform, shape, TILE)
    read._pixel_map.cache_clear()
    assert (fast is None) == (general is None)
    if fast is not None:
        assert fast[:2] == general[:2]
    # half a pixel off the grid: not a pure shift
    off = tuple(Affine(30.0, 0, x0 + dx + 15, 0, -30.0, y1 + dy))[:6]
    monkeypatch.undo()
    assert read._pure_shift(wkt, off, shape, TILE) is False


class _ForgetfulReader:
    """GDAL's words once its own HTTP retries are spent: the file 'is not recognized', a
    fault that reads as permanent; the server probe is the real reader's."""

    server_failure = staticmethod(RasterioReader().server_failure)

    def read(self, href, band, tile, *, resampling, nodata, options):
        raise OSError(f"'/vsicurl/{href}' not recognized as being in a supported file format.")


@pytest.mark.parametrize(("status", "masked"), [(503, False), (429, False), (404, True)])
def test_an_unreadable_file_is_masked_only_where_the_server_answers(status, masked):
    """A server failing every request (5xx, 429) makes the build stop, naming the endpoint,
    instead of masking every asset and marking an all-NaN step complete; a server that
    answers (404, or a file GDAL cannot decode) leaves the asset masked and recorded."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    item = {
        "type": "Feature", "id": "g", "collection": "HLSL30_2.0", "geometry": None,
        "properties": {"datetime": "2024-06-01T10:00:00Z"},
        "assets": {k: {"href": f"{base}/g/{k}.tif"} for k in ("B04", "Fmask")},
    }  # fmt: skip
    step = group_time_steps([(parse_item(item, catalog="/local"), profile_for("HLSL30_2.0"))], TILE)
    reader = AssetReader(_ForgetfulReader(), retries=1, backoff=0)
    try:
        if masked:
            data = read_step(step[0], TILE, ["red"], CubeOptions(), reader=reader)
            assert np.isnan(data.bands["red"]).all()
            assert "Fmask" in {e["asset"] for e in data.errors}
        else:
            with pytest.raises(EndpointUnavailableError) as err:
                read_step(step[0], TILE, ["red"], CubeOptions(), reader=reader)
            assert base in str(err.value) and f"HTTP {status}" in str(err.value)
    finally:
        server.shutdown()
        server.server_close()
