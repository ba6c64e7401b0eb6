"""The whole workflow, end to end, through Snakemake on tiny real models:
synthetic data with the oracle teacher, and the shared HotpotQA with an LLM
teacher. A second run must find nothing to do."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import HOTPOTQA, ROOT, need_shared
from refiner_lib import stage_times

PTQ_VARIANTS = {"lora_ptq_int8": {"quantization": None, "ptq": {"bits": 8}},
                "lora_ptq_int4": {"quantization": None, "ptq": {"bits": 4, "quant_type": "nf4", "double_quant": True,
                                                                 "compute_dtype": "float32"}}}
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--cores", "2"]


def tiny_config(model_path: Path) -> dict:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["models"] = {"tiny": {"source": str(model_path)}}
    config["roles"] = {"student": "tiny", "generator": "tiny", "teacher": "tiny"}
    config["data"]["synthetic"].update(num_articles=9, num_questions=40, min_words=500, max_words=700)
    config["data"]["split"] = {"num_train": 12, "num_eval": 6}
    config["training"]["validation"] = {"num_records": 4, "every_steps": 1}
    config["training"]["schedule"].update(max_steps=2, batch_size=2, max_seq_len=256)
    config["refinement"].update(budget_tokens=96, max_new_tokens={"doc_structuring": 16, "global_selection": 8})
    config["generation"].update(max_new_tokens=4, max_context_tokens=160)
    config["teacher"]["max_new_tokens"] = {"doc_structuring": 16, "global_selection": 8}
    config["training"]["variants"].update(PTQ_VARIANTS)
    return config


def run(workdir: Path, config: dict, *extra: str) -> subprocess.CompletedProcess:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return subprocess.run(SNAKEMAKE + ["--directory", str(workdir), *extra], capture_output=True, text=True)


def check_outputs(workdir: Path, config: dict) -> list[dict]:
    results = workdir / "results"
    rows = list(csv.DictReader((results / "summary.csv").open()))
    variants = list(config["training"]["variants"])
    assert [r["variant"] for r in rows] == ["full", "teacher"] + variants
    for row in rows:
        assert row["questions"] == str(config["data"]["split"]["num_eval"])
        for column in ("em", "f1", "accuracy", "context_tokens"):
            assert 0 <= float(row[column]), (row, column)
        if row["variant"] != "full":
            assert row["dqa_accuracy"] != "" and float(row["context_tokens"]) <= config["refinement"]["budget_tokens"]
    assert "| variant |" in (results / "summary.md").read_text()
    for stage in config["training"]["stages"]:
        for variant, settings in config["training"]["variants"].items():
            folder = results / "students" / stage / variant
            if settings.get("ptq"):  # no training of its own: the quantized merge of its sibling's adapter
                assert not (folder / "adapter").exists()
                sizes = json.loads((folder / "quantized" / "sizes.json").read_text())
                assert sizes["quantized_bytes"] < sizes["merged_bytes"]
                continue
            assert (folder / "adapter" / "adapter_model.safetensors").exists()
            losses = list(csv.DictReader((folder / "loss.csv").open()))
            assert len(losses) == config["training"]["schedule"]["max_steps"]
            metrics = json.loads((folder / "metrics.json").read_text())
            assert metrics["flops_measured"] > 0 and metrics["tokens_per_second"] > 0
            assert metrics["validation_records"] == config["training"]["validation"]["num_records"]
            assert metrics["final_validation_loss"] is not None
    for stage in ("query_analysis", "doc_structuring", "global_selection"):
        records = json.loads((results / "teacher" / stage / "train.json").read_text())
        assert records and set(records[0]) == {"instruction", "input", "output"}
    for method in ["full", "teacher"] + variants:
        answers = [json.loads(line) for line in (results / "answers" / f"{method}.jsonl").open()]
        assert len(answers) == config["data"]["split"]["num_eval"]
    timed = stage_times.read_benchmarks(results)
    expected = {"materialize_model", "prepare_data", "build_bm25_index", "retrieve", "query_analysis",
                "doc_structuring", "global_selection", "train_student", "refine", "generate", "evaluate", "summarize"}
    if any(s.get("ptq") for s in config["training"]["variants"].values()):
        expected.add("quantize_student")
    assert set(timed) == expected
    assert all(job["seconds"] > 0 for jobs in timed.values() for job in jobs)
    assert "| train_student | " in stage_times.table(results)
    return rows


def test_synthetic_oracle_end_to_end_then_nothing_to_do(tiny_model, tmp_path):
    config = tiny_config(tiny_model)
    first = run(tmp_path, config)
    assert first.returncode == 0, first.stderr[-4000:]
    rows = check_outputs(tmp_path, config)
    teacher = next(r for r in rows if r["variant"] == "teacher")
    assert float(teacher["dqa_accuracy"]) == 1.0 and float(teacher["adr_recall"]) > 0  # the oracle's own labels
    again = run(tmp_path, config, "--dry-run")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def test_hotpotqa_with_an_llm_teacher(tiny_model, tmp_path):
    need_shared(HOTPOTQA / "dev_distractor.jsonl")
    config = tiny_config(tiny_model)
    config["data"] = {"kind": "hotpotqa", "split": {"num_train": 8, "num_eval": 4},
                      "hotpotqa": {"questions": str(HOTPOTQA / "dev_distractor.jsonl"),
                                   "corpus": str(HOTPOTQA / "corpus.jsonl")}}
    config["teacher"]["kind"] = "llm"
    config["retrieval"]["top_k"] = 2
    config["training"]["variants"] = {"qlora": config["training"]["variants"]["qlora"]}
    result = run(tmp_path, config)
    assert result.returncode == 0, result.stderr[-4000:]
    check_outputs(tmp_path, config)
    labels = [json.loads(line) for line in (tmp_path / "results/teacher/query_analysis/train_labels.jsonl").open()]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in labels)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["training"]["lora"].update(rank=8), "'rank' was unexpected"),
    (lambda c: c.update(unknown_block={}), "'unknown_block' was unexpected"),
    (lambda c: c["retrieval"].update(top_k="five"), "'five' is not of type 'integer'"),
    (lambda c: c["training"]["variants"]["qlora"]["quantization"].update(bits=3), "quantization"),
])
def test_bad_config_is_refused_with_its_key(tiny_model, tmp_path, edit, message):
    config = tiny_config(tiny_model)
    edit(config)
    result = run(tmp_path, config, "--dry-run")
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_bad_data_stops_naming_file_line_and_field(tiny_model, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "1", "contents": "A\\ntext"}\n{"id": "2"}\n')
    questions = tmp_path / "questions.jsonl"
    questions.write_text('{"id": "q", "question": "who?", "golden_answers": ["x"]}\n')
    config = tiny_config(tiny_model)
    config["data"] = {"kind": "flashrag", "split": {"num_train": 1, "num_eval": 1},
                      "flashrag": {"questions": str(questions), "corpus": str(corpus)}}
    result = run(tmp_path, config, "--until", "prepare_data")
    assert result.returncode != 0
    assert f"{corpus}:2: missing field 'contents'" in (tmp_path / "results/logs/prepare_data.log").read_text()
    assert not (tmp_path / "results" / "data" / "corpus.jsonl").exists()
