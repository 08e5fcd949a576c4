"""Bad input matrix: every bad value, through the CLI or the Python API, gets a message that
names what to change, exit code 2 (usage) or 1 (runtime), no traceback, and nothing written.

The CLI cases run `geoproc.cli.main` in-process (the same code path as the console script,
without a Python start-up per case) so the whole table costs a few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geoproc.cli import main
from geoproc.errors import GeoprocError

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens on the discard port
BBOX = "11.9,47.4,12.1,47.6"


def _geojson(tmp: Path, geometry: dict | None, name: str = "aoi.geojson", raw: str | None = None):
    path = tmp / name
    path.write_text(
        raw
        if raw is not None
        else json.dumps({"type": "Feature", "geometry": geometry, "properties": {}})
    )
    return str(path)


# (id, argv builder, expected exit code, needle in the message)
CLI_CASES = [
    ("lon-out-of-range", lambda t: ["run", "flood", "--aoi", "200,0,201,1"], 2, "--aoi"),
    ("bbox-reversed", lambda t: ["run", "flood", "--aoi", "12,47,11,48"], 2, "west < east"),
    ("bbox-lat-out-of-range", lambda t: ["run", "flood", "--aoi", "11,80,12,95"], 2, "latitudes"),
    ("bbox-nan", lambda t: ["run", "flood", "--aoi", "nan,nan,nan,nan"], 2, "WEST,SOUTH,EAST,NORTH"),
    ("aoi-garbage", lambda t: ["run", "flood", "--aoi", "somewhere nice"], 2, "tile ids"),
    ("aoi-bad-tile-id", lambda t: ["run", "flood", "--aoi", "32N_0188"], 2, "--aoi"),
    ("aoi-missing-file", lambda t: ["run", "flood", "--aoi", str(t / "nope.geojson")], 2, "does not exist"),
    ("aoi-not-json", lambda t: ["run", "flood", "--aoi", _geojson(t, None, raw="{not json")], 2, "not valid JSON"),
    ("aoi-point", lambda t: ["run", "flood", "--aoi", _geojson(t, {"type": "Point", "coordinates": [12, 47]})], 2, "not a polygon"),
    ("aoi-line", lambda t: ["run", "flood", "--aoi", _geojson(t, {"type": "LineString", "coordinates": [[12, 47], [12.1, 47.1]]})], 2, "not a polygon"),
    ("aoi-zero-area", lambda t: ["run", "flood", "--aoi", _geojson(t, {"type": "Polygon", "coordinates": [[[12, 47], [12.1, 47.1], [12.2, 47.2], [12, 47]]]})], 2, "zero area"),
    ("aoi-empty-collection", lambda t: ["run", "flood", "--aoi", _geojson(t, None, raw='{"type": "FeatureCollection", "features": []}')], 2, "add a polygon"),
    ("aoi-projected-coords", lambda t: ["run", "flood", "--aoi", _geojson(t, {"type": "Polygon", "coordinates": [[[700000, 5200000], [710000, 5200000], [710000, 5210000], [700000, 5200000]]]})], 2, "EPSG:4326"),
    ("start-not-a-date", lambda t: ["run", "flood", "--aoi", BBOX, "--start", "2024-02-30"], 2, "--start"),
    ("end-word", lambda t: ["run", "flood", "--aoi", BBOX, "--end", "tomorrow"], 2, "--end"),
    ("dates-reversed", lambda t: ["run", "flood", "--aoi", BBOX, "--start", "2024-06-01", "--end", "2024-05-01"], 2, "before --start"),
    ("unknown-product", lambda t: ["run", "flod", "--aoi", BBOX], 2, "flood, lst, canopy"),
    ("no-product", lambda t: ["run", ",", "--aoi", BBOX], 2, "No product"),
    ("unknown-collection", lambda t: ["run", "flood", "--aoi", BBOX, "--collections", "HLSL31"], 2, "--collections"),
    ("empty-collections", lambda t: ["run", "flood", "--aoi", BBOX, "--collections", ","], 2, "--collections"),
    ("out-gcs", lambda t: ["run", "flood", "--aoi", BBOX, "--out", "gs://x/y"], 2, "s3://"),
    ("out-s3-no-bucket", lambda t: ["run", "flood", "--aoi", BBOX, "--out", "s3:///prefix"], 2, "s3://BUCKET"),
    ("out-file-with-host", lambda t: ["run", "flood", "--aoi", BBOX, "--out", "file://host/x"], 2, "three slashes"),
    ("catalog-ftp", lambda t: ["run", "flood", "--aoi", BBOX, "--catalog", "ftp://example.org/stac"], 2, "--catalog"),
    ("catalog-not-url", lambda t: ["run", "flood", "--aoi", BBOX, "--catalog", "my catalog"], 2, "--catalog"),
    ("tile-size-zero", lambda t: ["run", "flood", "--aoi", BBOX, "--tile-size", "0"], 2, "--tile-size"),
    ("tile-size-text", lambda t: ["run", "flood", "--aoi", BBOX, "--tile-size", "big"], 2, "--tile-size"),
    ("cloud-cover-150", lambda t: ["run", "flood", "--aoi", BBOX, "--max-cloud-cover", "150"], 2, "--max-cloud-cover"),
    ("backfill-workers-0", lambda t: ["backfill", "flood", "--aoi", BBOX, "--workers", "0"], 2, "--workers"),
    ("unknown-model", lambda t: ["models", "show", "no-such-model"], 2, "known models"),
    ("catalog-down", lambda t: ["run", "flood", "--aoi", BBOX], 1, "does not answer"),
]  # fmt: skip


@pytest.mark.parametrize(
    "build, code, needle", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES]
)
def test_cli_bad_input(tmp_path, capsys, monkeypatch, build, code, needle):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    argv = build(tmp_path)
    if argv[0] in ("run", "backfill"):
        for k, v in {
            "--catalog": UNREACHABLE,
            "--start": "2024-01-01",
            "--end": "2024-01-31",
            "--out": str(out),
        }.items():
            if k not in argv:
                argv += [k, v]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse errors exit 2 by themselves
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == code, err
    assert needle in err, err
    assert "Traceback" not in err
    assert not out.exists()


def _api_cases(tmp: Path):
    from geoproc.catalog.sensors import profile_for
    from geoproc.cube.assemble import CubeOptions
    from geoproc.inference.registry import find_card
    from geoproc.request import RunRequest

    good = dict(
        products="flood", aoi=BBOX, start="2024-01-01", end="2024-01-31",
        catalog=UNREACHABLE, out=str(tmp / "out"),
    )  # fmt: skip
    return [
        ("aoi", lambda: RunRequest.create(**good | {"aoi": "north pole"}), 2, "--aoi"),
        ("aoi-empty", lambda: RunRequest.create(**good | {"aoi": " "}), 2, "--aoi"),
        ("aoi-dict-point", lambda: RunRequest.create(**good | {"aoi": {"type": "Point", "coordinates": [1, 2]}}), 2, "not a polygon"),
        ("catalog-scheme", lambda: RunRequest.create(**good | {"catalog": "file:///etc"}), 2, "--catalog"),
        ("tile-size-option", lambda: RunRequest.create(**good | {"options": {"tile_size_px": 8}}), 2, "tile_size_px"),
        ("cloud-option", lambda: RunRequest.create(**good | {"options": {"max_cloud_cover": -5}}), 2, "max_cloud_cover"),
        ("resolution-option", lambda: RunRequest.create(**good | {"options": {"resolution": 0}}), 2, "resolution"),
        ("date-object-reversed", lambda: RunRequest.create(**good | {"start": "2024-02-01"}), 2, "before --start"),
        ("fmask-flag", lambda: CubeOptions(fmask_masked=("clouds",)), 2, "cloud_shadow"),
        ("resampling", lambda: CubeOptions(resampling="fancy"), 2, "nearest"),
        ("collection-name", lambda: profile_for("landsat-9000"), 2, "landsat-9000"),
        ("model-name", lambda: find_card("no-such-model"), 2, "known models"),
    ]  # fmt: skip


API_IDS = [
    "aoi", "aoi-empty", "aoi-dict-point", "catalog-scheme", "tile-size-option", "cloud-option",
    "resolution-option", "date-object-reversed", "fmask-flag", "resampling", "collection-name",
    "model-name",
]  # fmt: skip


@pytest.mark.parametrize("index", range(len(API_IDS)), ids=API_IDS)
def test_python_api_bad_input(tmp_path, index):
    case_id, call, code, needle = _api_cases(tmp_path)[index]
    assert case_id == API_IDS[index]
    with pytest.raises(GeoprocError) as err:
        call()
    assert err.value.exit_code == code
    assert needle in str(err.value)
    assert not (tmp_path / "out").exists()


def test_half_s3_credentials_are_a_runtime_error_naming_the_variables(monkeypatch):
    from geoproc import storage
    from geoproc.errors import CredentialsError

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GEOPROC_S3_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GEOPROC_S3_ACCESS_KEY_ID", "AKIAONLYHALF")
    with pytest.raises(CredentialsError) as err:
        storage.filesystem("s3://bucket/x")
    assert err.value.exit_code == 1
    assert "GEOPROC_S3_SECRET_ACCESS_KEY" in str(err.value)
    assert "AKIAONLYHALF" not in str(err.value)


def test_date_range_with_no_data_is_a_runtime_error_and_writes_nothing(tmp_path):
    from geoproc.cube.store import build_cubes
    from geoproc.errors import NoDataError

    catalog = tmp_path / "catalog"
    catalog.mkdir()
    item = {
        "type": "Feature", "id": "a", "collection": "HLSL30_2.0",
        "geometry": {"type": "Polygon", "coordinates": [[[11.9, 47.4], [12.1, 47.4], [12.1, 47.6], [11.9, 47.4]]]},
        "properties": {"datetime": "2023-06-01T10:00:00Z"}, "assets": {},
    }  # fmt: skip
    (catalog / "a.json").write_text(json.dumps(item))
    with pytest.raises(NoDataError) as err:
        build_cubes(
            str(catalog), collections=["HLSL30_2.0"], aoi=BBOX, start="2024-01-01",
            end="2024-01-31", out=str(tmp_path / "out"), tile_size_px=64,
        )  # fmt: skip
    assert err.value.exit_code == 1 and "--start" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_matrix_has_at_least_25_cases():
    assert len(CLI_CASES) + len(API_IDS) + 2 >= 25
