"""Model cards, weights and the registry: schema-valid cards, tampered weights refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import referencing
import torch

from geoproc.errors import ModelError, StorageURLError, UnknownNameError
from geoproc.inference.card import MLM_SCHEMA, parse_card
from geoproc.inference.registry import PACKAGE_SOURCE, find_card, list_models, load_model
from geoproc.stac_schemas import PACKAGED_SCHEMAS as SCHEMAS

CARD = Path(PACKAGE_SOURCE) / "tiny-fcn-1.0.0.json"


def _retrieve(uri: str) -> referencing.Resource:
    path = SCHEMAS / uri.split("://", 1)[1].split("#", 1)[0]
    return referencing.Resource.from_contents(json.loads(path.read_text()))


def _validator(schema_url: str) -> jsonschema.Draft7Validator:
    registry = referencing.Registry(retrieve=_retrieve)
    schema = _retrieve(schema_url).contents
    return jsonschema.Draft7Validator(schema, registry=registry)


def _copy_source(tmp_path: Path) -> Path:
    src = tmp_path / "models"
    shutil.copytree(PACKAGE_SOURCE, src)
    return src


def test_shipped_card_validates_against_mlm_schema_and_the_check_can_fail():
    doc = json.loads(CARD.read_text())
    assert MLM_SCHEMA in doc["stac_extensions"]
    mlm = _validator(MLM_SCHEMA)
    assert list(mlm.iter_errors(doc)) == []
    core = _validator("https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json")
    assert list(core.iter_errors(doc)) == []
    from geoproc.stac_schemas import validate_stac

    used = validate_stac(doc)  # core + every listed extension (eo, file, classification...)
    assert MLM_SCHEMA in used and len(used) >= 5
    broken = json.loads(CARD.read_text())
    broken["properties"]["mlm:tasks"] = ["guessing"]
    del broken["assets"]["weights"]["mlm:artifact_type"]
    assert len(list(mlm.iter_errors(broken))) >= 2


def test_card_describes_inputs_outputs_halo_and_hash():
    card = find_card("tiny-fcn")
    assert card.key == "tiny-fcn@1.0.0"
    assert card.input_bands == ("blue", "green", "red", "nir08", "swir16", "swir22")
    assert card.halo >= card.hyperparameters["depth"]  # covers the receptive field
    classes = {o.name: o for o in card.outputs}["surface_class"]
    assert classes.classes == ((0, "land"), (1, "water")) and classes.fill_value == 255
    spec = classes.variable_spec()
    assert spec.attrs()["flag_meanings"] == "land water"
    import hashlib

    weights = Path(PACKAGE_SOURCE) / card.weights_href
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == card.sha256


def test_loaded_weights_equal_the_file_tensors():
    from safetensors.torch import load_file

    model = load_model("tiny-fcn@1.0.0", cache=False)
    tensors = load_file(str(Path(PACKAGE_SOURCE) / model.card.weights_href))
    state = model.module.state_dict()
    assert set(state) == set(tensors)
    for k, v in tensors.items():
        assert torch.equal(state[k], v)
    assert not model.module.training


def test_tampered_weight_file_is_refused(tmp_path):
    src = _copy_source(tmp_path)
    weights = src / "tiny-fcn-1.0.0.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01  # flip one bit in a tensor
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        load_model("tiny-fcn", source=str(src), cache=False)


def test_registry_reads_file_url_and_refuses_missing_weights(tmp_path):
    src = _copy_source(tmp_path)
    models = list_models(source=f"file://{src}")
    assert [c.key for c in models] == ["tiny-fcn@1.0.0"]
    assert (
        load_model("tiny-fcn", source=f"file://{src}", cache=False).card.sha256 == models[0].sha256
    )
    (src / "tiny-fcn-1.0.0.safetensors").unlink()
    with pytest.raises(ModelError, match="missing"):
        load_model("tiny-fcn", source=str(src), cache=False)


def test_unknown_names_and_urls_say_what_to_change(tmp_path):
    with pytest.raises(UnknownNameError, match="tiny-fcn@1.0.0"):
        find_card("tiny-fcn@9.9.9")
    with pytest.raises(StorageURLError, match="s3://"):
        list_models(source="ftp://example.org/models")
    with pytest.raises(ModelError, match="does not exist"):
        list_models(source=str(tmp_path / "nowhere"))


def test_card_refusing_pickle_artifacts_and_unknown_architecture():
    doc = json.loads(CARD.read_text())
    doc["assets"]["weights"]["mlm:artifact_type"] = "torch.save"
    with pytest.raises(ModelError, match="safetensors"):
        parse_card(doc)
    doc = json.loads(CARD.read_text())
    doc["properties"]["mlm:architecture"] = "NoSuchNet"
    with pytest.raises(UnknownNameError, match="TinyFCN"):
        from geoproc.inference.registry import load_from_card

        load_from_card(parse_card(doc), cache=False)
    doc = json.loads(CARD.read_text())
    del doc["properties"]["geoproc:halo"]
    with pytest.raises(ModelError, match="geoproc:halo"):
        parse_card(doc)


@pytest.mark.integration
def test_registry_loads_from_s3_and_refuses_tampered_weights_there(s3_bucket):
    from geoproc.storage import filesystem

    url = f"s3://{s3_bucket}/models"
    fs, path = filesystem(url)
    for f in Path(PACKAGE_SOURCE).iterdir():
        fs.pipe_file(f"{path}/{f.name}", f.read_bytes())
    model = load_model("tiny-fcn@1.0.0", source=url, cache=False)
    assert model.card.sha256 == find_card("tiny-fcn").sha256
    weights = f"{path}/{model.card.weights_href}"
    data = bytearray(fs.cat_file(weights))
    data[100] ^= 0xFF
    fs.pipe_file(weights, bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        load_model("tiny-fcn", source=url, cache=False)
