"""FloodParams: one typed object behind run(), the output attributes and the fingerprint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from geoproc.errors import UsageError
from geoproc.products import flood
from geoproc.products.flood.double_bounce import DoubleBounceOptions
from geoproc.products.flood.params import FloodParams
from geoproc.products.flood.sar import SplitOptions


def test_options_from_json_become_typed_and_defaults_are_explicit():
    p = FloodParams.from_options(
        double_bounce={"min_increase_db": 4.0},
        split_options={"fallback": False},
        reference_time=["2024-01-01", "2024-02-01"],
    )
    assert p.double_bounce == DoubleBounceOptions(min_increase_db=4.0)
    assert p.split_options == SplitOptions(fallback=False)
    assert p.reference_time == ("2024-01-01", "2024-02-01")
    assert FloodParams.from_options(double_bounce=False).double_bounce is None
    # the same values typed or omitted give the same JSON (what a fingerprint hashes)
    assert FloodParams().as_dict() == FloodParams.from_options(optical_weight=0.6).as_dict()
    assert FloodParams().as_dict() != FloodParams.from_options(optical_weight=0.5).as_dict()
    json.dumps(p.as_dict())


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"speckle": 3}, "speckle"),
        ({"sar_units": "decibel"}, "sar_units"),
        ({"optical_weight": 1.5}, "optical_weight"),
        ({"split_options": {"tile": 3}}, "split_options"),
        ({"double_bounce": "yes"}, "double_bounce"),
    ],
)
def test_bad_options_name_the_argument(options, named):
    with pytest.raises(UsageError, match=named):
        FloodParams.from_options(**options)


def test_run_writes_every_parameter_and_keyword_overrides_params():
    rng = np.random.default_rng(0)
    vv = (10 ** (-9 / 10) * rng.gamma(4.4, 1 / 4.4, (64, 64))).astype(np.float32)
    ds = xr.Dataset({"vv": (("y", "x"), vv)})
    out = flood.run(ds, params=FloodParams(speckle_window=5), speckle_window=1)
    written = json.loads(out.attrs["parameters"])
    expected = FloodParams(speckle_window=1).as_dict()
    for key, value in expected.items():
        assert json.loads(json.dumps(written[key])) == json.loads(json.dumps(value)), key
    assert written["reference"] == "history"
    assert out.attrs["algorithm_version"] == flood.SPEC.version
