"""The config: defaults, refusals naming the key, and variants that differ only
in their quantization fields."""
import copy

import pytest

from conftest import ROOT
from refiner_lib import config as config_module

PTQ = {"lora_ptq_int8": {"quantization": None, "ptq": {"bits": 8}},
       "lora_ptq_int4": {"quantization": None, "ptq": {"bits": 4, "quant_type": "nf4"}}}


@pytest.fixture()
def config():
    loaded = config_module.load(ROOT / "config.yaml")
    loaded["training"]["variants"].update(copy.deepcopy(PTQ))
    return config_module.validate(loaded)


def test_variants_differ_only_in_quantization_fields(config):
    for stage in config["training"]["stages"]:
        resolved = {v: config_module.resolved_training(config, stage, v) for v in config["training"]["variants"]}
        shared = [{k: val for k, val in r.items() if k not in ("quantization", "ptq")} for r in resolved.values()]
        assert all(s == shared[0] for s in shared)
        assert len({repr((r["quantization"], r["ptq"])) for r in resolved.values()}) == len(resolved)


def test_ptq_variants_quantize_the_full_precision_adapter(config):
    assert config_module.trained_variant(config, "lora_ptq_int8") == "lora"
    assert config_module.trained_variant(config, "lora_ptq_int4") == "lora"
    assert config_module.trained_variant(config, "qlora") == "qlora"


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["training"]["schedule"].update(learning_rat=1), "training.schedule"),
    (lambda c: c["datasets"]["encyclopedia"].update(layout="squad"), "datasets.encyclopedia.layout"),
    (lambda c: c["datasets"].update(nq={"layout": "flashrag", "split": {"num_train": 1, "num_eval": 1},
                                        "questions": "q.jsonl"}), "datasets.nq.corpus"),
    (lambda c: c["datasets"].update(asqa={"layout": "asqa", "split": {"num_train": 1, "num_eval": 1},
                                          "questions": "q.json", "corpus": "c.jsonl", "teacher": "oracle"}),
     "datasets.asqa.teacher"),
    (lambda c: c["datasets"].update({"two words": {"layout": "synthetic"}}), "datasets"),
    (lambda c: c["models"]["smollm2-135m"].update(sha256="xyz"), "models.smollm2-135m.sha256"),
    (lambda c: c["training"]["variants"].update(full={"quantization": None}), "training.variants"),
])
def test_bad_values_name_their_key(config, edit, message):
    edit(config)
    with pytest.raises(config_module.ConfigError, match=message.replace(".", r"\.")):
        config_module.validate(config)


def test_defaults_are_filled():
    minimal = config_module.load(ROOT / "config.yaml")
    del minimal["retrieval"]["k1"]
    assert config_module.validate(minimal)["retrieval"]["k1"] == 1.5
