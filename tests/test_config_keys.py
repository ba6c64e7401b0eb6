"""The declaration of what each rule's jobs read (refiner_lib.config_keys),
on cases the tiny run's every-key test does not meet."""
import yaml

from conftest import ROOT
from refiner_lib import config_keys
from refiner_lib.config import validate


def default_config() -> dict:
    return validate(yaml.safe_load((ROOT / "config.yaml").read_text()))


def test_a_model_name_with_a_dot_is_one_key():
    """config/paper.yaml names models like qwen2.5-7b-instruct."""
    config = {"models": {"qwen2.5-7b": {"source": "hf:Qwen/Qwen2.5-7B-Instruct"}}}
    assert config_keys.declared("materialize_model", config, {"model": "qwen2.5-7b"}) == config
    assert config_keys.is_read(("models", "qwen2.5-7b", "source"), "materialize_model", config, {"model": "qwen2.5-7b"})


def test_an_8bit_block_reads_its_bits_alone():
    config = default_config()
    read = config_keys.declared("quantize_student", config, {"stage": "query_analysis", "variant": "lora_ptq_int8"})
    assert read["training"]["variants"]["lora_ptq_int8"]["ptq"] == {"bits": 8}
    int4 = config_keys.declared("quantize_student", config, {"stage": "query_analysis", "variant": "lora_ptq_int4"})
    assert set(int4["training"]["variants"]["lora_ptq_int4"]["ptq"]) == {"bits", "quant_type", "double_quant",
                                                                          "compute_dtype"}


ENCYCLOPEDIA = {"dataset": "encyclopedia", "split": "train"}


def test_the_oracle_reads_none_of_the_llm_teachers_keys():
    config = default_config()
    assert config_keys.declared("doc_structuring", config, ENCYCLOPEDIA) == \
        {"teacher": {"kind": "oracle"}, "datasets": {"encyclopedia": {"layout": "synthetic"}}}
    config["teacher"]["kind"] = "llm"
    read = config_keys.declared("doc_structuring", config, ENCYCLOPEDIA)
    assert set(read["teacher"]) == {"kind", "adapters", "batch_size", "max_input_tokens", "max_new_tokens"}
    assert set(read["teacher"]["max_new_tokens"]) == {"doc_structuring"} and "precision" in read


def test_a_dataset_without_annotations_gets_the_llm_teacher():
    """ASQA has no supporting annotations: with teacher.kind oracle it is labelled
    by the LLM teacher, and reads that teacher's keys; its own `teacher` key wins."""
    config = default_config()
    config["datasets"]["asqa"] = {"layout": "asqa", "questions": "q.json", "corpus": "c.jsonl",
                                  "split": {"num_train": 1, "num_eval": 1}}
    read = config_keys.declared("query_analysis", config, {"dataset": "asqa", "split": "train"})
    assert read["teacher"]["kind"] == "oracle" and "batch_size" in read["teacher"]
    config["datasets"]["encyclopedia"]["teacher"] = "llm"
    read = config_keys.declared("query_analysis", config, ENCYCLOPEDIA)
    assert read["datasets"] == {"encyclopedia": {"teacher": "llm"}} and "kind" not in read["teacher"]


def test_a_split_size_of_any_dataset_changes_no_other_part():
    assert config_keys.within("datasets.nq.split.num_eval", "datasets.*.split")
    assert not config_keys.within("datasets.nq.layout", "datasets.*.split")
    assert not config_keys.within("datasets", "datasets.*.split")


def test_a_baseline_reads_no_students_settings():
    config = default_config()
    teacher = config_keys.declared("refine", config, {"method": "teacher"})
    assert "training" not in teacher and "precision" not in teacher
    assert set(teacher["refinement"]) == {"budget_tokens"}
    full = config_keys.declared("refine", config, {"method": "full"})
    assert set(full) == {"roles", "generation"}
