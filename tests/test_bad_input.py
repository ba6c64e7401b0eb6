"""Bad input and faults as a user meets them (issue 13): each error names the
file, the line or record and the field, or the config key; nothing is dropped
without a count; a config file means what it says; bad input fails once."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import pytest
import yaml

from conftest import ROOT
from refiner_lib import bm25, data, models, refine, tasks
from refiner_lib import config as config_module
from refiner_lib.errors import InputError
from refiner_lib.jsonl import load_jsonl, write_jsonl
from workflow_helpers import dry_run_jobs, run, snakemake_command, tiny_config, write_config

CORPUS = [{"id": "d1", "contents": "Alpha\nAlpha is a long river in the north."},
          {"id": "d2", "contents": "Beta\nBeta is a small town on the Alpha."}]


def hotpot_line(qid: str, titles: list[str]) -> dict:
    return {"id": qid, "question": "Which river?", "answer": "Alpha", "type": "bridge",
            "supporting_facts": {"title": titles, "sent_id": [0] * len(titles)}}


# 2. a broken local model folder is refused when it is materialized, naming the source


def test_a_truncated_weights_file_is_refused(tiny_model, tmp_path):
    broken = tmp_path / "broken"
    models.shutil.copytree(tiny_model, broken)
    weights = broken / "model.safetensors"
    os.truncate(weights, weights.stat().st_size // 2)
    with pytest.raises(models.ModelSourceError, match=f"'{broken}': model.safetensors is not a readable safetensors"):
        models.materialize(str(broken), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_folder_without_a_working_tokenizer_is_refused(tiny_model, tmp_path):
    broken = tmp_path / "no-tokenizer"
    models.shutil.copytree(tiny_model, broken)
    for file in broken.glob("tokenizer*"):
        file.unlink()
    with pytest.raises(models.ModelSourceError, match=f"'{broken}': its tokenizer"):
        models.materialize(str(broken), tmp_path / "out")


def test_weights_that_do_not_fit_the_config_are_refused(tiny_model, tmp_path):
    broken = tmp_path / "wrong-shape"
    models.shutil.copytree(tiny_model, broken)
    config = json.loads((broken / "config.json").read_text())
    config["intermediate_size"] += 8
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(models.ModelSourceError, match="do not fit its config.json.*mlp.*has shape"):
        models.materialize(str(broken), tmp_path / "out")


def test_a_local_source_is_tracked_by_its_files(tiny_model, tmp_path):
    source = tmp_path / "source"
    models.shutil.copytree(tiny_model, source)
    before = models.source_state(str(source))
    assert before == models.source_state(str(source))
    (source / "config.json").write_text((source / "config.json").read_text() + " ")
    assert models.source_state(str(source)) != before
    assert models.source_state("hf:org/name") == "hf:org/name"


def test_an_edited_model_source_is_materialized_again(tiny_model, tmp_path):
    source = tmp_path / "source"
    models.shutil.copytree(tiny_model, source)
    config = tiny_config(source)
    result = run(tmp_path, config, "--until", "materialize_model")
    assert result.returncode == 0, result.stderr[-3000:]
    assert dry_run_jobs(tmp_path, config).get("materialize_model") is None
    time.sleep(0.01)
    (source / "generation_config.json").write_text((source / "generation_config.json").read_text())  # repaired
    assert dry_run_jobs(tmp_path, config).get("materialize_model") == 1


# 3. HotpotQA supporting titles missing from the corpus are counted; none found is an error


def test_missing_supporting_titles_are_counted(tmp_path, caplog):
    path = tmp_path / "hotpot.jsonl"
    write_jsonl(path, [hotpot_line("a", ["Alpha", "Gamma"]), hotpot_line("b", ["Beta"])])
    with caplog.at_level(logging.WARNING):
        questions = data.load_hotpotqa(path, CORPUS)
    assert [q["supporting_missing"] for q in questions] == [["Gamma"], []]
    assert [len(q["supporting"]) for q in questions] == [1, 1]
    assert f"{path}: 1 of 3 supporting titles are not in the corpus" in caplog.text
    assert f"'Gamma' at {path}:1" in caplog.text


def test_a_corpus_holding_no_supporting_title_is_an_error(tmp_path):
    path = tmp_path / "hotpot.jsonl"
    write_jsonl(path, [hotpot_line("a", ["Gamma"]), hotpot_line("b", ["Delta", "Gamma"])])
    with pytest.raises(InputError, match=f"{path}: none of the 3 supporting titles .* 'Gamma' at {path}:1"):
        data.load_hotpotqa(path, CORPUS)


# 4. a byte that is not UTF-8 is named with its file and line


def test_a_non_utf8_byte_names_file_and_line(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b'{"id": "1", "contents": "A\\ntext"}\n{"id": "2", "contents": "B\\ncaf\xe9"}\n')
    with pytest.raises(InputError, match=rf"{path}:2: not UTF-8 text \(byte 0xe9 at column 32\)"):
        data.load_corpus(path)


def test_a_byte_order_mark_is_read_as_utf8(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "1", "contents": "A\\ntext"}\r\n')
    assert data.load_corpus(path) == [{"id": "1", "contents": "A\ntext"}]


# 5. a budget nothing fits: counted when some contexts are empty, an error when all are


def test_nothing_fitting_the_budget_is_flagged():
    trees = [{"title": "Alpha", "abstract": ["Alpha is a long river in the north of the country."], "sections": []}]
    words = lambda text: len(text.split())  # noqa: E731
    refined = refine.refine_question("Which river?", trees, {"Local": 1.0, "Global": 0.0}, [[]], 3, words)
    assert refined == {"context": "", "context_tokens": 0, "over_budget": True}
    assert "over_budget" not in refine.refine_question("Which river?", trees, {"Local": 1.0, "Global": 0.0}, [[]],
                                                       100, words)


def test_empty_contexts_are_counted_and_all_empty_is_an_error(caplog):
    rows = [{"id": "a", "context": "", "over_budget": True}, {"id": "b", "context": "text"}]
    with caplog.at_level(logging.WARNING):
        tasks.check_budget(rows, 12)
    assert "1 of 2 refined contexts are empty: no retrieved section fits refinement.budget_tokens = 12" in caplog.text
    with pytest.raises(InputError, match=r"refinement.budget_tokens = 12: .* any of the 2 questions"):
        tasks.check_budget([{**row, "over_budget": True} for row in rows], 12)


# 6. config errors name the key (and YAML errors the line); JSON errors read well


def default_config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_a_role_naming_an_unknown_model_names_the_key():
    config = default_config()
    config["roles"]["generator"] = "llama-3-8b"
    with pytest.raises(config_module.ConfigError, match="key 'roles.generator': model 'llama-3-8b' is not in 'models'"):
        config_module.validate(config)


def test_a_bad_quantization_field_is_named():
    config = default_config()
    config["training"]["variants"]["lora_ptq_int8"]["ptq"] = {"bits": 3}
    with pytest.raises(config_module.ConfigError,
                       match=r"key 'training.variants.lora_ptq_int8.ptq.bits': 3 is not one of \[4, 8\]"):
        config_module.validate(config)


def test_a_yaml_error_names_its_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("seed: 1\ntraining:\n  lora: [1, 2\n  rank: 3\n")
    with pytest.raises(config_module.ConfigError, match=rf"{path}:4:7: malformed YAML"):
        config_module.load(path)


def test_a_malformed_json_message_reads_once(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "question": "unterminated\n')
    with pytest.raises(InputError) as caught:
        load_jsonl(path)
    assert str(caught.value) == f"{path}:1: malformed JSON (Unterminated string at column 25)"


def test_the_workflow_names_a_yaml_error_line(tiny_model, tmp_path):
    (tmp_path / "config.yaml").write_text("seed: 1\nmodels: {tiny: {source: x}\nroles: {}\n")
    result = subprocess.run(snakemake_command(tmp_path) + ["--dry-run"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0
    assert "config.yaml:3:1: malformed YAML" in result.stdout + result.stderr


# 1. a user's config file replaces the default; 7. a missing folder stops before any job


def test_a_user_config_file_replaces_the_default(tiny_model, tmp_path):
    config = tiny_config(tiny_model)
    write_config(tmp_path, config)  # the workdir's config.yaml keeps every variant
    mine = json.loads(json.dumps(config))
    mine["training"]["variants"] = {"lora": {"quantization": None}}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(mine))
    jobs = dry_run_jobs(tmp_path, config, extra=("--configfile", "mine.yaml"))
    assert jobs["train_student"] == len(config["training"]["stages"])  # lora's only
    assert "quantize_student" not in jobs
    assert jobs["refine"] == len(config_module.BASELINES) + 1
    assert dry_run_jobs(tmp_path, config)["refine"] == len(config_module.BASELINES) + len(config["training"]["variants"])


def test_a_missing_model_folder_stops_before_any_job(tiny_model, tmp_path):
    config = tiny_config(tmp_path / "not-here")
    result = run(tmp_path, config, "--dry-run")
    assert result.returncode != 0
    assert f"key 'models.tiny.source': no such folder '{tmp_path / 'not-here'}'" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


# 7. a model job that failed on bad input is not run again by its retry


STEP = """
import sys
from refiner_lib.errors import InputError
from refiner_lib.runtime import setup
setup(sys.argv[1], 1, int(sys.argv[2]))
if sys.argv[3] == "bad-input":
    raise InputError("data.jsonl:3: missing field 'question'")
raise MemoryError("out of memory")
"""


def run_step(log, attempt: int, failure: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", STEP, str(log), str(attempt), failure], capture_output=True, text=True,
                          cwd=ROOT)


def test_a_retry_after_bad_input_stops_at_once(tmp_path):
    log = tmp_path / "logs" / "train.log"
    assert run_step(log, 1, "bad-input").returncode != 0
    assert "data.jsonl:3: missing field 'question'" in log.read_text()
    assert run_step(log, 2, "transient").returncode != 0
    text = log.read_text()
    assert "attempt 2 not run: attempt 1 failed on bad input" in text and "missing field 'question'" in text
    assert "out of memory" not in text  # the step itself did not run


def test_a_retry_after_a_transient_failure_runs(tmp_path):
    log = tmp_path / "logs" / "train.log"
    assert run_step(log, 1, "transient").returncode != 0
    assert run_step(log, 2, "transient").returncode != 0
    assert "out of memory" in log.read_text()  # it ran again
    run_step(log, 1, "bad-input")
    run_step(log, 1, "transient")  # a new run starts clean
    assert "out of memory" in log.read_text()


def test_the_workflow_does_not_retry_a_budget_nothing_fits(tiny_model, tmp_path):
    config = tiny_config(tiny_model)
    config["retries"] = 1
    config["refinement"]["budget_tokens"] = 1
    result = run(tmp_path, config, "results/datasets/encyclopedia/refined/teacher.jsonl")
    assert result.returncode != 0
    log = (tmp_path / "results/logs/refine/encyclopedia/teacher.log").read_text()
    assert "attempt 2 not run: attempt 1 failed on bad input" in log
    assert "refinement.budget_tokens = 1: no retrieved section fits it" in log
    assert not (tmp_path / "results/datasets/encyclopedia/refined/teacher.jsonl").exists()


# 8. top_k above the corpus size is an error naming the key


def test_top_k_above_the_corpus_size_is_an_error(tmp_path):
    index = tmp_path / "index"
    bm25.build_index(CORPUS).save(index)
    write_jsonl(tmp_path / "q.jsonl", [{"id": "q", "question": "Which river?"}])
    with pytest.raises(InputError, match="retrieval.top_k = 3, but the corpus has 2 documents"):
        tasks.retrieve(index, tmp_path / "q.jsonl", tmp_path / "out.jsonl", 3)
    assert not (tmp_path / "out.jsonl").exists()
    tasks.retrieve(index, tmp_path / "q.jsonl", tmp_path / "out.jsonl", 2)
    assert load_jsonl(tmp_path / "out.jsonl")[0]["doc_ids"] == ["d1", "d2"]


def test_a_config_file_is_checked_before_a_run_with_its_line(tmp_path):
    path = tmp_path / "my-config.yaml"
    path.write_text("seed: 1\nmodels: {a: {source: /x}\n")
    check = [sys.executable, "-m", "refiner_lib.config"]
    result = subprocess.run(check + [str(path)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1 and f"{path}:3:1: malformed YAML" in result.stderr
    result = subprocess.run(check + ["config.yaml"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "config.yaml: valid" in result.stdout
