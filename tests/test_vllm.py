"""The vLLM backend against the Hugging Face one: the same student adapters,
the same greedy inputs, the same refinement and answers."""
import json
from pathlib import Path

import pytest

from refiner_lib import bm25, stages, tasks, teacher, training
from refiner_lib.jsonl import load_jsonl, write_json, write_jsonl
from refiner_lib.refiner import RefinerSpec, StudentModels
from refiner_lib.settings import BackendSettings, GenerationSettings, TrainingOutputs, TrainingSettings
from test_models_training import LORA, SCHEDULE

STAGES = ("query_analysis", "doc_structuring", "global_selection")


@pytest.fixture(scope="module")
def refinement_inputs(tiny_model, synthetic_data, tmp_path_factory):
    """Eval questions, BM25 retrieval, oracle labels for every stage, and a
    student with query analysis and global selection adapters."""
    folder = tmp_path_factory.mktemp("vllm")
    questions, corpus, trees = synthetic_data
    asked = questions[:4]
    index = bm25.build_index(corpus, bm25.BM25Params(1.5, 0.75, 0.25))
    retrieval = bm25.retrieve(index, asked, 2)
    doc_ids = {r["id"]: r["doc_ids"] for r in retrieval}
    tree_by_id = {t["id"]: t for t in trees}
    labels = {"query_analysis": stages.oracle_query_analysis(asked),
              "doc_structuring": stages.oracle_trees(teacher.documents_of(asked, doc_ids), tree_by_id,
                                                     {d["id"]: d for d in corpus}),
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
        schedule = dict(SCHEDULE, learning_rate=1e-2, max_seq_len=512)
        settings = TrainingSettings.from_dict({"lora": LORA, "schedule": schedule, "quantization": None, "seed": 1})
        training.train_adapter(tiny_model, stage_records, settings,
                               TrainingOutputs(Path(adapters[stage]), folder / f"{stage}.csv"))
    # a fixed selection threshold and the identity alpha: this test compares backends, not calibrations
    write_json(Path(adapters["global_selection"]) / stages.SELECTION_FILE, {"threshold": 0.2})
    write_json(Path(adapters["query_analysis"]) / stages.ANALYSIS_FILE, {"scale": 1.0, "shift": 0.0})
    return paths, adapters


def refine_with(backend: BackendSettings, tiny_model, paths, adapters, output):
    student = StudentModels(model_dir=str(tiny_model), adapters=adapters, backend=backend, batch_size=4,
                            max_input_tokens=512, max_new_tokens={"doc_structuring": 16})
    spec = RefinerSpec(method="lora", retrieval=tasks.retrieval_map(paths["retrieval"]),
                       corpus=tasks.by_id(load_jsonl(paths["corpus"])),
                       teacher_labels={stage: paths[stage] for stage in STAGES}, budget=96, max_context_tokens=160,
                       student=student)
    tasks.refine_variant(spec, paths["eval"], tiny_model, output)
    return [json.loads(line) for line in output.open()]


def test_refinement_and_answers_match_across_backends(tiny_model, refinement_inputs, tmp_path):
    paths, adapters = refinement_inputs
    vllm = BackendSettings(kind="vllm", dtype="float32", kv_cache_gb=1)
    hf_rows = refine_with(BackendSettings(), tiny_model, paths, adapters, tmp_path / "hf.jsonl")
    vllm_rows = refine_with(vllm, tiny_model, paths, adapters, tmp_path / "vllm.jsonl")
    assert len(hf_rows) == len(vllm_rows) == 4
    for ours, theirs in zip(hf_rows, vllm_rows):
        assert ours["label"] == theirs["label"] and ours["selections"] == theirs["selections"]
        assert ours["context"] == theirs["context"]
        for name, probability in ours["probabilities"].items():
            assert theirs["probabilities"][name] == pytest.approx(probability, abs=1e-4)
        for doc_id, scores in ours["selection_scores"].items():  # the student's per-title probabilities
            for title, probability in scores.items():
                assert theirs["selection_scores"][doc_id][title] == pytest.approx(probability, abs=1e-4)
        assert ours["refine_flops"] == theirs["refine_flops"]  # the same parameters and tokens
    answers = {}
    generation = GenerationSettings(max_new_tokens=8, batch_size=4, max_context_tokens=256, prompt_allowance_tokens=256)
    for name, backend in (("hf", BackendSettings()), ("vllm", vllm)):
        tasks.generate_answers(tmp_path / "hf.jsonl", paths["eval"], tiny_model, generation,
                               tmp_path / f"{name}-answers.jsonl", backend=backend)
        answers[name] = [json.loads(line) for line in (tmp_path / f"{name}-answers.jsonl").open()]
    assert [a["prediction"] for a in answers["hf"]] == [a["prediction"] for a in answers["vllm"]]
    assert [a["generate_flops"] for a in answers["hf"]] == [a["generate_flops"] for a in answers["vllm"]]
