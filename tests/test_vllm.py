"""The vLLM backend against the Hugging Face one: the same student adapters,
the same greedy inputs, the same refinement and answers."""
import json

import pytest

from refiner_lib import bm25, prompts, stages, tasks, teacher, training
from refiner_lib.jsonl import write_jsonl
from test_models_training import LORA, SCHEDULE

STAGES = ("query_analysis", "doc_structuring", "global_selection")


@pytest.fixture(scope="module")
def refinement_inputs(tiny_model, synthetic_data, tmp_path_factory):
    """Eval questions, BM25 retrieval, oracle labels for every stage, and a
    student with query analysis and global selection adapters."""
    folder = tmp_path_factory.mktemp("vllm")
    questions, corpus, trees = synthetic_data
    asked = questions[:4]
    index = bm25.build_index(corpus, 1.5, 0.75, 0.25)
    retrieval = bm25.retrieve(index, asked, 2)
    doc_ids = {r["id"]: r["doc_ids"] for r in retrieval}
    tree_by_id = {t["id"]: t for t in trees}
    labels = {"query_analysis": stages.oracle_query_analysis(asked),
              "doc_structuring": stages.oracle_trees(teacher.documents_of(asked, doc_ids), tree_by_id),
              "global_selection": stages.oracle_selection(asked, doc_ids, tree_by_id)}
    paths = {"eval": folder / "eval.jsonl", "retrieval": folder / "retrieval.jsonl", "corpus": folder / "corpus.jsonl"}
    write_jsonl(paths["eval"], asked)
    write_jsonl(paths["retrieval"], retrieval)
    write_jsonl(paths["corpus"], corpus)
    for stage in STAGES:
        paths[stage] = folder / f"{stage}.jsonl"
        write_jsonl(paths[stage], labels[stage])
    records = {"query_analysis": teacher.query_analysis("oracle", questions[4:12])[0],
               "global_selection": teacher.global_selection("oracle", asked, doc_ids, tree_by_id)[0]}
    adapters = {}
    for stage, stage_records in records.items():
        adapters[stage] = str(folder / stage)
        training.train_adapter(tiny_model, stage_records, adapters[stage], folder / f"{stage}.csv", LORA,
                               dict(SCHEDULE, learning_rate=1e-2, max_seq_len=512), None, seed=1)
    return paths, adapters


def refine_with(backend: dict, tiny_model, paths, adapters, output):
    student = {"model_dir": tiny_model, "adapters": adapters, "stage_models": {}, "quantization": None,
               "backend": backend, "batch_size": 4, "max_input_tokens": 512,
               "max_new_tokens": {"doc_structuring": 16, "global_selection": 8}}
    tasks.refine_variant("lora", paths["eval"], paths["retrieval"], paths["corpus"], tiny_model,
                         {stage: paths[stage] for stage in STAGES}, 96, 160, output, student,
                         output.with_suffix(".cost.json"), warmup_questions=1)
    return [json.loads(line) for line in output.open()]


def test_refinement_and_answers_match_across_backends(tiny_model, refinement_inputs, tmp_path):
    paths, adapters = refinement_inputs
    vllm = {"kind": "vllm", "dtype": "float32", "kv_cache_gb": 1}
    hf_rows = refine_with({"kind": "hf"}, tiny_model, paths, adapters, tmp_path / "hf.jsonl")
    vllm_rows = refine_with(vllm, tiny_model, paths, adapters, tmp_path / "vllm.jsonl")
    assert len(hf_rows) == len(vllm_rows) == 4
    for ours, theirs in zip(hf_rows, vllm_rows):
        assert ours["label"] == theirs["label"] and ours["selections"] == theirs["selections"]
        assert ours["context"] == theirs["context"]
        for name, probability in ours["probabilities"].items():
            assert theirs["probabilities"][name] == pytest.approx(probability, abs=1e-4)
        assert ours["refine_flops"] == theirs["refine_flops"]  # the same parameters and tokens
    answers = {}
    for name, backend in (("hf", {"kind": "hf"}), ("vllm", vllm)):
        tasks.generate_answers(tmp_path / "hf.jsonl", paths["eval"], tiny_model, 8, 4, 512,
                               tmp_path / f"{name}-answers.jsonl", tmp_path / f"{name}-answers.cost.json",
                               warmup_questions=1, backend_settings=backend)
        answers[name] = [json.loads(line)["prediction"] for line in
                         (tmp_path / f"{name}-answers.jsonl").open()]
    assert answers["hf"] == answers["vllm"]
