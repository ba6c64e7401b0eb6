"""Several datasets in one run, on real shared data and the tiny model:
HotpotQA (its corpus, the oracle teacher), 2WikiMultihopQA (a corpus made from
its own context paragraphs, the oracle teacher) and ELI5 (long-form, ROUGE-L,
FlashRAG's wiki18 slice as corpus, the LLM teacher: it has no annotations).
Students train once on the merged train parts; every dataset is evaluated and
averaged. Then what adding or removing a dataset reruns, and the seven-dataset
config's plan."""
import copy
import csv
import json

import pytest
import yaml

from conftest import HOTPOTQA, ROOT, SHARED, need_shared
from refiner_lib import data
from refiner_lib.config import BASELINES
from workflow_helpers import check_outputs, dry_run_jobs, run, tiny_config, write_config

SPLIT = {"num_train": 6, "num_eval": 3}


def datasets() -> dict:
    return {
        "hotpotqa": {"layout": "hotpotqa", "questions": str(need_shared(HOTPOTQA / "dev_distractor.jsonl")),
                     "corpus": str(HOTPOTQA / "corpus.jsonl"), "split": dict(SPLIT)},
        "2wikimultihopqa": {"layout": "2wikimultihopqa", "split": dict(SPLIT),
                            "questions": str(need_shared(SHARED / "2wikimultihopqa" / "dev_sample.json"))},
        "eli5": {"layout": "eli5", "questions": str(need_shared(SHARED / "eli5" / "alce_eval.json")),
                 "corpus": str(need_shared(SHARED / "flashrag" / "wiki18_passages_sample.jsonl")),
                 "split": {"num_train": 4, "num_eval": 3}, "max_new_tokens": 8},
    }


@pytest.fixture(scope="module")
def multi_run(tiny_model, tmp_path_factory):
    config = tiny_config(tiny_model)
    config["datasets"] = datasets()
    config["retrieval"]["top_k"] = 2
    # the tiny tokenizer, trained on the synthetic text, spends many tokens on Wikipedia paragraphs
    # (at 256, no wiki18 passage fitted the budget for any ELI5 question)
    config["refinement"]["budget_tokens"] = 512
    config["generation"]["max_context_tokens"] = 512
    config["training"]["variants"] = {"lora": config["training"]["variants"]["lora"]}
    workdir = tmp_path_factory.mktemp("multi")
    result = run(workdir, config)
    assert result.returncode == 0, result.stderr[-4000:]
    return {"workdir": workdir, "config": config}


def test_every_dataset_is_refined_answered_and_averaged(multi_run):
    workdir, config = multi_run["workdir"], multi_run["config"]
    rows = check_outputs(workdir, config)
    methods = list(BASELINES) + list(config["training"]["variants"])
    averages = {r["variant"]: r for r in rows if r["dataset"] == "average"}
    assert list(averages) == methods and len(rows) == 4 * len(methods)
    by_dataset = {(r["dataset"], r["variant"]): r for r in rows if r["dataset"] != "average"}
    for method in methods:
        f1 = [float(by_dataset[name, method]["f1"]) for name in config["datasets"]]
        assert float(averages[method]["f1"]) == pytest.approx(sum(f1) / len(f1), abs=1e-4)  # each dataset once
        assert averages[method]["questions"] == "9"
        assert averages[method]["rouge_l"] == by_dataset["eli5", method]["rouge_l"] != ""  # eli5 alone has it
        assert by_dataset["hotpotqa", method]["rouge_l"] == ""
    # ADR is scored where gold sections exist (the two annotated sets), not on ELI5
    assert by_dataset["eli5", "teacher"]["adr_recall"] == "" and by_dataset["hotpotqa", "teacher"]["adr_recall"] != ""
    paired = list(csv.DictReader((workdir / "results" / "paired.csv").open()))
    scopes = {r["dataset"] for r in paired}
    assert scopes == {"hotpotqa", "2wikimultihopqa", "eli5", "average"}
    average_f1 = next(r for r in paired if (r["dataset"], r["variant"], r["reference"], r["metric"]) ==
                      ("average", "full", "lora", "f1"))
    assert average_f1["n"] == "9"
    summary = (workdir / "results" / "summary.md").read_text()
    assert "Over all datasets:" in summary and "On eli5:" in summary
    # the students trained once, on every dataset's train part (6 + 6 + 4 questions)
    records = json.loads((workdir / "results" / "teacher" / "query_analysis" / "train.json").read_text())
    assert len(records) == 16
    eli5 = (workdir / "results" / "datasets" / "eli5")
    assert len((eli5 / "teacher" / "query_analysis" / "train_labels.jsonl").read_text().splitlines()) == 4
    corpus_folder = workdir / "results" / "corpora" / data.corpus_name("eli5", config["datasets"]["eli5"])
    corpus = [json.loads(line) for line in (corpus_folder / "corpus.jsonl").open()]
    assert not any(d["contents"].startswith('"') for d in corpus)  # wiki18's quoted titles, unquoted
    answers = [json.loads(line) for line in (eli5 / "answers" / "lora.jsonl").open()]
    assert len(answers) == 3
    assert dry_run_jobs(workdir, config) == {}


def student_side(config: dict, datasets: list[str]) -> dict:
    """The jobs a retrained student reruns on `datasets`: its refinement and
    answers, every method's evaluation (the generator's timing covers all)."""
    variants, methods = len(config["training"]["variants"]), len(BASELINES) + len(config["training"]["variants"])
    return {"merge_training_records": 2, "train_student": 2 * variants, "refine": variants * len(datasets),
            "time_refine": len(datasets), "generate": variants * len(datasets),
            "time_generate": len(datasets), "evaluate": methods * len(datasets), "summarize": 1, "plot_results": 1}


def test_removing_a_dataset_retrains_and_reruns_only_the_students_elsewhere(multi_run):
    workdir, config = multi_run["workdir"], multi_run["config"]
    fewer = copy.deepcopy(config)
    del fewer["datasets"]["eli5"]
    try:
        assert dry_run_jobs(workdir, fewer) == student_side(config, ["hotpotqa", "2wikimultihopqa"])
    finally:
        write_config(workdir, config)


def test_adding_a_dataset_runs_its_own_jobs_and_retrains(multi_run):
    """ASQA (STR-EM over its readings, the LLM teacher) over ELI5's corpus: its
    questions, retrieval, labels and every method on it, but no new corpus or
    index (the corpus file is prepared and indexed once); the students retrain
    on the larger merged set, so their side reruns on the other datasets too;
    nothing else does."""
    workdir, config = multi_run["workdir"], multi_run["config"]
    more = copy.deepcopy(config)
    more["datasets"]["asqa"] = {"layout": "asqa", "questions": str(need_shared(SHARED / "asqa" / "dev.json")),
                                "corpus": config["datasets"]["eli5"]["corpus"], "split": dict(SPLIT)}
    methods = len(BASELINES) + len(config["training"]["variants"])
    own = {"prepare_data": 1, "split_questions": 2, "retrieve": 2, "query_analysis": 2, "doc_structuring": 2,
           "global_selection": 2}
    expected = student_side(config, list(config["datasets"]))
    for rule in ("refine", "generate"):  # every method on the new dataset
        expected[rule] += methods
    expected["time_refine"] += 1
    expected["time_generate"] += 1
    expected["evaluate"] += methods
    try:
        assert dry_run_jobs(workdir, more) == {**own, **expected}
    finally:
        write_config(workdir, config)


def test_the_seven_datasets_config_plans_the_whole_benchmark(tmp_path):
    """config/seven_datasets.yaml: FlashRAG's seven datasets read from the Hub by
    name, over a local wiki18 corpus, merged for training. A dry run plans
    every dataset's jobs (nothing is downloaded); the corpus is stood in for."""
    config = yaml.safe_load((ROOT / "config" / "seven_datasets.yaml").read_text())
    names = ["nq", "triviaqa", "popqa", "hotpotqa", "2wikimultihopqa", "asqa", "eli5"]
    assert list(config["datasets"]) == names
    assert all(block["questions"].startswith("hf:RUC-NLPIR/FlashRAG_datasets/") for block in config["datasets"].values())
    corpus = tmp_path / config["datasets"]["nq"]["corpus"]
    corpus.parent.mkdir(parents=True)
    corpus.symlink_to(need_shared(SHARED / "flashrag" / "wiki18_passages_sample.jsonl"))
    jobs = dry_run_jobs(tmp_path, config)
    methods = jobs["refine"] // 7  # the baselines and variants, and the vLLM repeats of those it serves
    assert methods * 7 == jobs["refine"] and methods > len(BASELINES) + len(config["training"]["variants"])
    per_dataset = {"prepare_data": 1, "split_questions": 2, "retrieve": 2, "query_analysis": 2,
                   "doc_structuring": 2, "global_selection": 2, "evaluate": methods, "time_refine": 2,
                   "generate": methods}
    for rule, count in per_dataset.items():
        assert jobs[rule] == 7 * count, rule
    # one wiki18 for all seven: prepared and indexed once
    assert jobs["prepare_corpus"] == jobs["build_bm25_index"] == 1
    assert jobs["merge_training_records"] == len(config["training"]["stages"]) and jobs["summarize"] == 1
