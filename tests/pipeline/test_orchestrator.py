"""One orchestrator: the CLI path (in-process executor) and the Prefect flow run the same
`run_pipeline`, so the same request gives the same records and the same errors."""

from __future__ import annotations

import pytest

from geoproc import pipeline
from geoproc.errors import NoDataError
from geoproc.request import RunRequest

pytestmark = pytest.mark.integration

TILE = "32N_0188_1371"


@pytest.fixture(autouse=True)
def _trust_the_local_archive(monkeypatch):
    monkeypatch.setenv("GEOPROC_ALLOW_LOCAL_ASSETS", "true")
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _request(url: str, out, *, start: str, end: str) -> RunRequest:
    return RunRequest.create(
        products="lst", aoi=TILE, start=start, end=end, catalog=url, out=str(out),
        options={"tile_size_px": 128},
    )  # fmt: skip


def _comparable(report: dict) -> dict:
    """What a run decided, without timings and paths of the report itself."""
    return {
        "status": report["status"],
        "search": report["search"],
        "cubes": {
            t: {k: v for k, v in c.items() if k != "seconds"} for t, c in report["cubes"].items()
        },
        "products": {
            k: {f: v for f, v in p.items() if f != "seconds"} for k, p in report["products"].items()
        },
        "product_steps_computed": report["product_steps_computed"],
    }


def test_cli_path_and_flow_agree(stac_api_small, tmp_path):
    from prefect.testing.utilities import prefect_test_harness

    from flows.regional import regional_mapping

    out = tmp_path / "out"
    empty = _request(stac_api_small, tmp_path / "empty", start="2019-01-01", end="2019-01-31")
    # a tile whose cube exists, with no scenes in the requested window
    built = pipeline.run_pipeline(
        _request(stac_api_small, out, start="2024-01-01", end="2024-02-29"), publish_outputs=False
    )
    assert built["products"][f"lst/{TILE}"]["status"] == "written"
    no_new = _request(stac_api_small, out, start="2019-01-01", end="2019-01-31")

    with pytest.raises(NoDataError, match="no usable scenes"):
        pipeline.run_pipeline(empty, publish_outputs=False)
    cli = pipeline.run_pipeline(no_new, publish_outputs=False)

    with prefect_test_harness(server_startup_timeout=120):
        state = regional_mapping(request=empty, publish_outputs=False, return_state=True)
        assert state.is_failed()
        with pytest.raises(NoDataError, match="no usable scenes"):
            state.result()
        flow = regional_mapping(request=no_new, publish_outputs=False)

    assert cli["search"]["found"] == 0
    assert cli["products"][f"lst/{TILE}"]["status"] == "skipped"  # still run, unchanged
    assert _comparable(flow) == _comparable(cli)
    assert flow["run_id"] == cli["run_id"]
