"""CanopyParams: one typed object behind run(), the output attributes and the fingerprint."""

from __future__ import annotations

import dataclasses
import json

import pytest

from geoproc.errors import UsageError
from geoproc.products import canopy
from geoproc.products.canopy.params import CanopyParams
from tests.helpers.canopy_series import class_grid, synthetic_dataset


def test_params_are_frozen_and_default_to_the_transferable_method():
    params = CanopyParams()
    assert params.method == "metrics"
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.method = "model"  # type: ignore[misc]


def test_unknown_option_is_a_usage_error_naming_the_known_ones():
    with pytest.raises(UsageError, match="min_clear"):
        CanopyParams.from_options({"min_clears": 2})


def test_fingerprint_follows_what_changes_the_output_only():
    base = CanopyParams()
    assert base.fingerprint() == CanopyParams(block_size=7, device="cpu").fingerprint()
    assert base.fingerprint() != CanopyParams(method="rules").fingerprint()
    assert base.fingerprint() != CanopyParams(min_clear=3).fingerprint()
    assert len(base.fingerprint()) == 64


def test_run_with_params_equals_run_with_keywords_and_writes_them_to_the_attributes():
    ds = synthetic_dataset(class_grid(["broadleaf", "grass"], repeat=2), seed=1)
    by_keywords = canopy.run(ds, method="rules", min_clear=2)
    by_params = canopy.run(ds, params=CanopyParams(method="rules", min_clear=2))
    assert (
        by_keywords["canopy_class"].values.tobytes() == by_params["canopy_class"].values.tobytes()
    )
    written = json.loads(by_params.attrs["parameters"])
    assert written == CanopyParams(method="rules", min_clear=2).as_attrs()
    assert (
        by_params.attrs["parameters_sha256"]
        == CanopyParams(method="rules", min_clear=2).fingerprint()
    )
    assert by_params.attrs["algorithm_version"] == canopy.SPEC.version
