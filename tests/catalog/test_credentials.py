"""Credentials against loopback servers that behave like the archives' gates.

Planetary Computer: a token endpoint whose tokens expire or are revoked, a COG server that
answers 403 to missing/expired tokens. NASA Earthdata: a COG server that redirects a
request without a valid bearer token to a login host answering 401. A refusal that
outlives one re-sign is a credentials error naming the catalog and what to set - never a
masked hole - and a build marks nothing complete.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from geoproc.catalog.credentials import EarthdataLogin, PlanetaryComputerSigner
from geoproc.catalog.items import parse_item
from geoproc.catalog.search import group_time_steps
from geoproc.catalog.sensors import profile_for
from geoproc.cube.assemble import CubeOptions, read_step
from geoproc.cube.read import AssetCredentialsError, AssetReader
from geoproc.errors import CredentialsError
from tests.helpers.asset_servers import earthdata_servers, sas_servers
from tests.helpers.cube_items import ENCODE_BASE, TILE, make_item

CATALOG = "http://127.0.0.1:9/stac/v1"  # a loopback API: its asset hosts are trusted


@pytest.fixture()
def pc_sdk(monkeypatch):
    """The planetary-computer SDK pointed at a local token endpoint, with an empty cache."""
    from planetary_computer import sas
    from planetary_computer.settings import Settings

    def point_at(url: str) -> None:
        monkeypatch.setenv("PC_SDK_SAS_URL", url)
        Settings.get.cache_clear()
        sas.TOKEN_CACHE.clear()

    yield point_at
    Settings.get.cache_clear()
    sas.TOKEN_CACHE.clear()


def _step(tmp_path, host: str, container: str = "hls", item_id: str = "g1"):
    clear = np.zeros((80, 80), np.uint8)
    item = make_item(tmp_path, item_id, fmask=clear)
    for key, asset in item["assets"].items():
        asset["href"] = f"http://{host}/{container}/{item_id}/{key}.tif"
    parsed = parse_item(item, catalog=CATALOG)
    return group_time_steps([(parsed, profile_for("HLSL30_2.0"))], TILE)[0]


def _expected_red() -> np.ndarray:
    # B04 holds the source column + 1000; the tile starts 10 source columns in
    cols = np.broadcast_to(np.arange(TILE.tile_size_px) + 10, TILE.shape)
    return ((cols + ENCODE_BASE) * 1e-4).astype(np.float32)


def test_planetary_computer_signs_and_resigns_a_revoked_token(tmp_path, pc_sdk):
    with sas_servers(tmp_path / "data") as (token_url, cog, gate):
        pc_sdk(token_url)
        reader = AssetReader(
            providers=(PlanetaryComputerSigner(accounts={cog: "acct"}),), backoff=0
        )
        step = _step(tmp_path, cog)
        first = read_step(step, TILE, ["red"], CubeOptions(), reader=reader)
        assert first.errors == [] and len(gate.issued) == 1  # one token for both assets
        np.testing.assert_allclose(first.bands["red"], _expected_red(), rtol=1e-6)
        gate.valid.clear()  # the token expires server-side before its stated expiry
        # (new files: GDAL would answer the same URLs from its cache)
        later = _step(tmp_path, cog, item_id="g2")
        second = read_step(later, TILE, ["red"], CubeOptions(), reader=reader)
        assert second.errors == [] and len(gate.issued) == 2  # 403 -> re-signed once
        assert any(status == 403 for _, status in gate.requests)
        np.testing.assert_allclose(second.bands["red"], _expected_red(), rtol=1e-6)


def test_planetary_computer_token_near_expiry_is_replaced_before_use(tmp_path, pc_sdk):
    with sas_servers(tmp_path / "data") as (token_url, cog, gate):
        pc_sdk(token_url)
        gate.lifetime_s = 30  # under the SDK's 60 s margin: every signing fetches a new one
        reader = AssetReader(
            providers=(PlanetaryComputerSigner(accounts={cog: "acct"}),), backoff=0
        )
        data = read_step(_step(tmp_path, cog), TILE, ["red"], CubeOptions(), reader=reader)
        assert data.errors == [] and len(gate.issued) == 2  # Fmask and B04, each freshly signed
        assert not any(status == 403 for _, status in gate.requests)


def test_planetary_computer_refusal_after_resign_is_a_credentials_error(tmp_path, pc_sdk):
    with sas_servers(tmp_path / "data") as (token_url, cog, gate):
        pc_sdk(token_url)
        gate.accept_tokens = False  # e.g. a token endpoint that needs a subscription key
        reader = AssetReader(
            providers=(PlanetaryComputerSigner(accounts={cog: "acct"}),), backoff=0
        )
        with pytest.raises(AssetCredentialsError) as err:
            read_step(_step(tmp_path, cog), TILE, ["red"], CubeOptions(), reader=reader)
    message = str(err.value)
    assert "PC_SDK_SUBSCRIPTION_KEY" in message and CATALOG in message and "g1" in message
    assert "sig=" not in message  # the token never reaches a log
    assert err.value.exit_code == 1 and len(gate.issued) == 2


def test_earthdata_bearer_token_reaches_gdal_and_a_missing_login_is_named(tmp_path, monkeypatch):
    with earthdata_servers(tmp_path / "data", token="good-token") as (cog, gate):
        monkeypatch.setenv("GEOPROC_EARTHDATA_HOSTS", cog)
        reader = AssetReader(providers=(EarthdataLogin(),), backoff=0)
        monkeypatch.setenv("EARTHDATA_TOKEN", "good-token")
        step = _step(tmp_path, cog, container="lp-prod-protected")
        data = read_step(step, TILE, ["red"], CubeOptions(), reader=reader)
        np.testing.assert_allclose(data.bands["red"], _expected_red(), rtol=1e-6)
        monkeypatch.delenv("EARTHDATA_TOKEN")
        monkeypatch.setenv("NETRC", str(tmp_path / "no-such-netrc"))
        other = _step(tmp_path, cog, container="lp-prod-protected", item_id="g2")
        with pytest.raises(AssetCredentialsError) as err:
            read_step(other, TILE, ["red"], CubeOptions(), reader=reader)
        assert any(status == 401 for _, status in gate.requests)  # followed to the login host
    assert "EARTHDATA_TOKEN" in str(err.value) and ".netrc" in str(err.value)


def test_a_refused_build_marks_nothing_complete(tmp_path, pc_sdk):
    """Today's bug: 403 became a masked, 'complete' step no rerun repaired."""
    from geoproc.cube.store import build_cubes, completed_step_keys, cube_location

    with sas_servers(tmp_path / "data") as (token_url, cog, gate):
        pc_sdk(token_url)
        gate.accept_tokens = False
        make_item(tmp_path, "g1", fmask=np.zeros((80, 80), np.uint8))
        path = tmp_path / "items" / "g1.json"
        item = json.loads(path.read_text())
        for key, asset in item["assets"].items():
            asset["href"] = f"http://{cog}/hls/g1/{key}.tif"
        path.write_text(json.dumps(item))
        with pytest.raises(CredentialsError, match="refused the credentials"):
            build_cubes(str(tmp_path / "items"), collections=["HLSL30_2.0"], aoi=TILE.id,
                        start="2024-06-01", end="2024-06-01", out=str(tmp_path / "out"),
                        tile_size_px=TILE.tile_size_px)  # fmt: skip
    assert completed_step_keys(cube_location(str(tmp_path / "out"), TILE.id)) == set()
