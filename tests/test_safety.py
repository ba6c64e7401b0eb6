"""Safety: the config cannot name code to run, weights load as safetensors
only, pickles load with weights_only, and a model's own Python code never runs
unless the user set trust_remote_code for it."""
import json
import re
import shutil

import pytest

from conftest import ROOT
from refiner_lib import config as config_module
from refiner_lib import models
from refiner_lib.backend import load_causal_lm


def test_a_model_source_cannot_name_python_code():
    config = config_module.load(ROOT / "config.yaml")
    for source in ("python:os.system", "refiner_lib.models:materialize", "hf:org"):
        config["models"]["smollm2"] = {"source": source}
        with pytest.raises(config_module.ConfigError, match="source"):
            config_module.validate(config)


def test_no_config_key_takes_code():
    """No schema key names a module, a function or a shell command."""
    schema = (ROOT / "schemas" / "config.schema.yaml").read_text()
    assert not re.search(r"^\s*(module|function|callable|command|shell|script|hook)\w*:", schema, re.M)


def test_pickles_load_with_weights_only():
    for module in (ROOT / "refiner_lib").glob("*.py"):
        for call in re.findall(r"torch\.load\([^)]*\)", module.read_text()):
            assert "weights_only=True" in call, (module.name, call)
        assert not re.search(r"^\s*(import|from)\s+(c?pickle|dill|joblib)\b|allow_pickle=True", module.read_text(),
                             re.M), module.name


def test_pickled_weights_are_refused(tiny_model, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model, folder)
    for weights in folder.glob("*.safetensors"):
        weights.rename(folder / "pytorch_model.bin")
    with pytest.raises(models.ModelSourceError, match="no .safetensors weights"):
        models.materialize(str(folder), tmp_path / "out")


def remote_code_model(tiny_model, folder, sentinel):
    """A model folder whose config points at Python code that writes `sentinel` when imported."""
    shutil.copytree(tiny_model, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="ships_its_own_code",
                  auto_map={"AutoConfig": "configuration_own.OwnConfig",
                            "AutoModelForCausalLM": "modeling_own.OwnModel"})
    (folder / "config.json").write_text(json.dumps(config))
    payload = f"open({str(sentinel)!r}, 'w').write('ran')\n"
    (folder / "configuration_own.py").write_text(payload)
    (folder / "modeling_own.py").write_text(payload)


def test_remote_code_stays_off_unless_the_user_sets_it(tiny_model, tmp_path):
    sentinel = tmp_path / "code-ran"
    remote_code_model(tiny_model, tmp_path / "own-code", sentinel)
    # materialization checks the weights against the architecture, which it will not build untrusted
    with pytest.raises(models.ModelSourceError, match="trust_remote_code"):
        models.materialize(str(tmp_path / "own-code"), tmp_path / "materialized")
    assert not (tmp_path / "materialized").exists()
    assert models.load_options(tmp_path / "own-code") == {"trust_remote_code": False, "use_safetensors": True}
    with pytest.raises(ValueError, match="trust_remote_code"):
        load_causal_lm(tmp_path / "own-code")
    assert not sentinel.exists()


def test_trust_remote_code_is_off_in_the_schema_default():
    config = config_module.validate(config_module.load(ROOT / "config.yaml"))
    assert all(model["trust_remote_code"] is False for model in config["models"].values())
