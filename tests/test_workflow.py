"""The whole workflow, end to end, through Snakemake on tiny real models:
synthetic data with the oracle teacher, and the shared HotpotQA with an LLM
teacher. A second run must find nothing to do."""
import copy
import csv
import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import HOTPOTQA, need_shared
import config_edits
from refiner_lib import config as config_module
from refiner_lib import config_keys, data, report, seed_spread
from refiner_lib.config import validate
from refiner_lib.jsonl import load_jsonl
from workflow_helpers import CALIBRATION_FILES, check_outputs, dry_run_jobs, run, tiny_config, write_config

def test_synthetic_oracle_end_to_end_then_nothing_to_do(synthetic_run):
    workdir, config = synthetic_run["workdir"], synthetic_run["config"]
    rows = check_outputs(workdir, config)
    teacher = next(r for r in rows if r["variant"] == "teacher")
    assert float(teacher["dqa_accuracy"]) == 1.0 and float(teacher["adr_recall"]) > 0  # the oracle's own labels
    assert dry_run_jobs(workdir, config, synthetic_run["source"]) == {}


def test_plots_and_the_html_report(synthetic_run):
    workdir = synthetic_run["workdir"]
    for name in ("f1_vs_latency", "f1_vs_memory", "f1_vs_flops", "loss_curves"):
        assert (workdir / "results" / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    result = run(workdir, synthetic_run["config"], "--report", "report.html", source=synthetic_run["source"])
    assert result.returncode == 0, result.stderr[-3000:]
    html = (workdir / "report.html").read_text()
    for caption in ("Pareto frontier", "Training loss per step", "refiner's peak memory", "FLOPs per question"):
        assert caption in html, caption
    for name in ("f1_vs_latency.png", "f1_vs_memory.png", "f1_vs_flops.png", "loss_curves.png", "summary.csv"):
        assert name in html, name


def job_events(log: Path) -> list[tuple[str, int, str]]:
    """("start" | "finish", job id, rule) in the order Snakemake's log records them."""
    events, rule = [], None
    for line in log.read_text().splitlines():
        started = re.match(r"(?:local)?rule (\w+):", line)
        if started:
            rule = started.group(1)
        job = re.match(r"\s+jobid: (\d+)", line)
        if job and rule:
            events.append(("start", int(job.group(1)), rule))
            rule = None
        finished = re.match(r"Finished jobid: (\d+) \(Rule: (\w+)\)", line)
        if finished:
            events.append(("finish", int(finished.group(1)), finished.group(2)))
    return events


def test_timed_jobs_run_alone(synthetic_run):
    """Every latency job, and every training job (its throughput is reported),
    starts on an idle machine and no job starts before it ends."""
    log = min((synthetic_run["workdir"] / ".snakemake" / "log").glob("*.snakemake.log"))
    running: dict[int, str] = {}
    timed: set[int] = set()
    checked = 0
    for kind, job, rule in job_events(log):
        if kind == "start":
            assert not (running.keys() & timed), f"{rule} started while a timed job ran: {running}"
            if rule in ("time_refine", "time_generate", "train_student"):
                assert not running, f"{rule} (job {job}) started beside {sorted(running.values())}"
                timed.add(job)
                checked += 1
            running[job] = rule
        else:
            running.pop(job, None)
    # the refiners of the eight methods, the generator for all of them, two stages x two trained variants
    assert checked == 1 + 1 + 4


TEACHER_JOBS = {"query_analysis": 2, "doc_structuring": 2, "global_selection": 2}
MERGES = {"merge_training_records": 2}  # the two trained stages' records, of every dataset


def eval_side(methods: int) -> dict:
    """The jobs of `methods` methods after refinement: both passes and the summary.
    The refiners and the generator are each timed in one job for every method,
    so every method's evaluation takes the new timings."""
    return {"refine": methods, "time_refine": 1, "generate": methods, "time_generate": 1,
            "evaluate": 8, "summarize": 1}


EVAL_SIDE = eval_side(8)  # full, local_only, selection_only, teacher and four variants
STUDENTS = {"train_student": 4, "quantize_student": 4, **eval_side(4)}


def with_plots(expected: dict) -> dict:
    """A new summary redraws the plots."""
    return {**expected, "plot_results": 1} if "summarize" in expected else expected


def set_path(config: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for key in parents:
        config = config.setdefault(key, {})
    config[last] = value


# (edit: dotted config key -> new value, the jobs the next run must run). The tiny
# config trains query_analysis and global_selection students, variants lora, qlora
# and the two PTQ variants built from lora: 8 methods with the four baselines.
RERUNS = {
    "eval questions": ({"datasets.encyclopedia.split.num_eval": 5},
                       {"split_questions": 1, "retrieve": 1, "query_analysis": 1, "doc_structuring": 1,
                        "global_selection": 1, **EVAL_SIDE}),
    "LoRA rank": ({"training.lora.r": 4}, STUDENTS),
    "QLoRA quantization type": ({"training.variants.qlora.quantization.quant_type": "fp4"},
                                {"train_student": 2, **eval_side(1)}),
    "PTQ bits": ({"training.variants.lora_ptq_int4.ptq.bits": 8}, {"quantize_student": 2, **eval_side(1)}),
    "token budget": ({"refinement.budget_tokens": 80}, eval_side(7)),  # not `full`
    "generator max tokens": ({"generation.max_new_tokens": 6},
                             {"generate": 8, "time_generate": 1, "evaluate": 8, "summarize": 1}),
    "latency sample": ({"measurement.latency_questions": 3},
                       {"time_refine": 1, "time_generate": 1, "evaluate": 8, "summarize": 1}),
    "teacher kind": ({"teacher.kind": "llm"},
                     {**TEACHER_JOBS, **MERGES, "train_student": 4, "quantize_student": 4, **eval_side(7)}),
    "retrieval top-k": ({"retrieval.top_k": 2},
                        {"retrieve": 2, "doc_structuring": 2, "global_selection": 2, "merge_training_records": 1,
                         "train_student": 2,
                         "quantize_student": 2, **EVAL_SIDE}),
    # the index and the local scorer of refinement both read BM25's constants
    "BM25 length normalization": ({"retrieval.b": 0.5},
                                  {"build_bm25_index": 1, "retrieve": 2, "doc_structuring": 2, "global_selection": 2,
                                   "merge_training_records": 1, "train_student": 2, "quantize_student": 2, **EVAL_SIDE}),
    "synthetic data seed": ({"datasets.encyclopedia.synthetic.seed": 8},
                            {"prepare_corpus": 1, "prepare_data": 1, "build_bm25_index": 1, "split_questions": 2,
                             "retrieve": 2,
                             **TEACHER_JOBS, **MERGES, "train_student": 4, "quantize_student": 4, **EVAL_SIDE}),
    "DQA objective kd -> sft": ({"training.objective.query_analysis": "sft"},
                                {"train_student": 2, "quantize_student": 2, **eval_side(4)}),
    "checkpoint frequency (changes no result)": ({"training.checkpoint_every_steps": 7}, {}),
    # the oracle reads none of the LLM teacher's settings; only query analysis reads its confidence
    "LLM teacher batch size (the oracle reads none)": ({"teacher.batch_size": 2, "teacher.max_input_tokens": 512,
                                                        "teacher.max_new_tokens.global_selection": 8}, {}),
    "oracle confidence": ({"teacher.oracle_confidence": 0.9},
                          {"query_analysis": 2, "merge_training_records": 1, "train_student": 2, "quantize_student": 2, **eval_side(7)}),
}


@pytest.mark.parametrize("edit", RERUNS, ids=list(RERUNS))
def test_a_config_edit_reruns_exactly_its_stale_jobs(synthetic_run, edit):
    changes, expected = RERUNS[edit]
    config = copy.deepcopy(synthetic_run["config"])
    for path, value in changes.items():
        set_path(config, path, value)
    try:
        assert dry_run_jobs(synthetic_run["workdir"], config, synthetic_run["source"]) == with_plots(expected)
    finally:
        write_config(synthetic_run["workdir"], synthetic_run["config"])


LIBRARY_EDITS = {
    "metrics.py": {"evaluate": 8, "summarize": 1},
    "training.py": STUDENTS,
    "quantize.py": {"quantize_student": 4, **eval_side(2)},
}


@pytest.mark.parametrize("module", LIBRARY_EDITS)
def test_a_library_edit_reruns_the_rules_whose_code_uses_it(synthetic_run, module):
    path = synthetic_run["source"] / "refiner_lib" / module
    original = path.read_text()
    try:
        path.write_text(original + "\n# an edit\n")
        assert dry_run_jobs(synthetic_run["workdir"], synthetic_run["config"], synthetic_run["source"]) == \
            with_plots(LIBRARY_EDITS[module])
    finally:
        path.write_text(original)
    assert dry_run_jobs(synthetic_run["workdir"], synthetic_run["config"], synthetic_run["source"]) == {}


def test_hotpotqa_with_an_llm_teacher(tiny_model, tmp_path):
    need_shared(HOTPOTQA / "dev_distractor.jsonl")
    config = tiny_config(tiny_model)
    config["datasets"] = {"hotpotqa": {"layout": "hotpotqa", "split": {"num_train": 8, "num_eval": 4},
                                       "questions": str(HOTPOTQA / "dev_distractor.jsonl"),
                                       "corpus": str(HOTPOTQA / "corpus.jsonl")}}
    config["teacher"]["kind"] = "llm"
    config["retrieval"]["top_k"] = 2
    # the tiny tokenizer, trained on the synthetic text, spends many tokens on a
    # HotpotQA paragraph: at the tiny budget of 96 none fits, which is an error
    config["refinement"]["budget_tokens"] = 256
    config["generation"]["max_context_tokens"] = 256
    config["training"]["variants"] = {"qlora": config["training"]["variants"]["qlora"]}
    # every stage a student, two of them distilled from the LLM teacher's scores
    config["training"]["stages"] = ["query_analysis", "doc_structuring", "global_selection"]
    config["training"]["objective"] = {"query_analysis": "kd", "global_selection": "kd"}
    result = run(tmp_path, config)
    assert result.returncode == 0, result.stderr[-4000:]
    check_outputs(tmp_path, config)
    for stage, kind in (("query_analysis", "kd"), ("doc_structuring", "sft"), ("global_selection", "kd")):
        metrics = json.loads((tmp_path / "results/students" / stage / "qlora/metrics.json").read_text())
        assert metrics["objective"]["kind"] == kind, stage
    labels = [json.loads(line) for line in
              (tmp_path / "results/datasets/hotpotqa/teacher/query_analysis/train_labels.jsonl").open()]
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
    config["datasets"] = {"nq": {"layout": "flashrag", "split": {"num_train": 1, "num_eval": 1},
                                 "questions": str(questions), "corpus": str(corpus)}}
    result = run(tmp_path, config, "--until", "prepare_corpus")
    assert result.returncode != 0
    name = data.corpus_name("nq", config["datasets"]["nq"])
    assert f"{corpus}:2: missing field 'contents'" in (tmp_path / f"results/logs/prepare_corpus/{name}.log").read_text()
    assert not (tmp_path / "results" / "corpora" / name / "corpus.jsonl").exists()


QUALITY_COLUMNS = [name for name in report.SUMMARY_COLUMNS
                   if name.split("_ci_")[0] in ("em", "f1", "accuracy", "context_answer_recall", "dqa_accuracy",
                                                "dqa_alpha_error", "adr_recall", "adr_precision", "adr_auc", "compression", "context_tokens")]


@pytest.mark.parametrize("stage", sorted(seed_spread.COLUMNS))
def test_the_seed_spread_trains_the_student_the_run_trained(synthetic_run, tmp_path, stage):
    """seed_spread's row for the run's own seed is the run's own student and
    refinement: its figures are the summary's (which rounds to 4 decimals)."""
    workdir = synthetic_run["workdir"]
    write_config(tmp_path, synthetic_run["config"])
    config = config_module.load(tmp_path / "config.yaml")
    results = workdir / config["results"]
    assert stage in config["training"]["stages"]
    student = seed_spread.RunStudent(config, results, "encyclopedia", stage, "lora")
    row = seed_spread.seed_row(student, config["seed"], tmp_path)
    lora = next(r for r in csv.DictReader((results / "summary.csv").open()) if r["variant"] == "lora")
    summarized = [column for column in seed_spread.COLUMNS[stage] if not column.startswith("raw_")]
    for column in summarized:
        assert lora[column] != "", column
        assert row[column] == pytest.approx(float(lora[column]), abs=1e-4), column
    if stage == "query_analysis":
        assert 0 <= row["raw_dqa_accuracy"] <= 1 and row["raw_dqa_alpha_error"] >= 0
    else:  # another seed's student is the one that refines: its titles' scores are its own
        seed_spread.seed_row(student, config["seed"] + 1, tmp_path)
        scores = [[r["selection_scores"] for r in load_jsonl(path)]
                  for path in sorted(tmp_path.glob(f"{stage}-lora-seed*/refined.jsonl"))]
        assert len(scores) == 2 and scores[0] != scores[1]
    assert seed_spread.spread([row, row], summarized)[0].startswith(f"{summarized[0]}: mean {row[summarized[0]]:.4f}, sd 0.0000")


def test_the_same_config_on_the_same_machine_gives_the_same_numbers(synthetic_run, tmp_path):
    """A second run from nothing: identical adapters, contexts, answers and quality columns."""
    first, second = synthetic_run["workdir"] / "results", tmp_path / "results"
    result = run(tmp_path, synthetic_run["config"], source=synthetic_run["source"])
    assert result.returncode == 0, result.stderr[-4000:]
    adapters = sorted(first.glob("students/*/*/adapter/adapter_model.safetensors"))
    assert adapters
    for path in adapters:
        ours, theirs = load_file(path), load_file(second / path.relative_to(first))
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours), path
    for path in sorted(p for name in CALIBRATION_FILES.values() for p in first.glob(f"students/*/*/adapter/{name}")):
        assert path.read_text() == (second / path.relative_to(first)).read_text(), path
    for folder in ("refined", "answers"):
        for path in sorted(first.glob(f"datasets/*/{folder}/*.jsonl")):
            assert path.read_text() == (second / path.relative_to(first)).read_text(), path
    rows = [[{k: r[k] for k in QUALITY_COLUMNS} for r in csv.DictReader((results / "summary.csv").open())]
            for results in (first, second)]
    assert rows[0] == rows[1]


# Keys whose new value cannot be derived from the schema alone (a path, a model's
# name, a data set that needs its files), as the edits that give them one.
def special_edits(key: str, config: dict, workdir: Path) -> dict | None:
    model = config["models"]["tiny"]["source"]
    edits = {
        "results": {"results": "results_elsewhere"},
        "models.tiny.source": {"models.tiny.source": model + "/."},  # the same folder, named otherwise
        "models.tiny.sha256": {"models.tiny.sha256": "0" * 64},
        "datasets.encyclopedia.layout": {"datasets.encyclopedia.layout": "flashrag",
                                         **{f"datasets.encyclopedia.{k}": v for k, v in flashrag_files(workdir).items()}},
        "datasets.encyclopedia.teacher": {"datasets.encyclopedia.teacher": "llm"},
        "inference.backends": {"inference.backends": ["hf", "vllm"]},
    }
    role = re.fullmatch(r"roles\.(\w+)", key)
    if role:  # another model entry, from the same folder
        return {"models.other": {"source": model}, key: "other"}
    if re.fullmatch(r"datasets\.\w+\.(questions|eval_questions|corpus)", key):  # files a synthetic set does not read
        return {key: "elsewhere/file.jsonl"}
    adapter = re.fullmatch(r"teacher\.adapters\.\w+", key)
    if adapter:  # the oracle reads no adapter
        return {key: "elsewhere/adapter"}
    return edits.get(key)


def flashrag_files(workdir: Path) -> dict:
    """Two small FlashRAG files: a dry run only needs them to exist."""
    questions, corpus = workdir / "flashrag_questions.jsonl", workdir / "flashrag_corpus.jsonl"
    questions.write_text(json.dumps({"id": "q1", "question": "Who?", "golden_answers": ["A"]}) + "\n")
    corpus.write_text(json.dumps({"id": "d1", "contents": "Title\nText."}) + "\n")
    return {"questions": str(questions), "corpus": str(corpus)}


UNEDITABLE = {"training.objective.doc_structuring": "its one allowed value is sft"}
EVERY_KEY = [key for key in config_edits.leaf_keys(validate(tiny_config(Path("tiny")))) if key not in UNEDITABLE]


def graph(synthetic_run, config: dict) -> dict:
    """output file -> its job's wildcards and inputs, for every job `config` makes."""
    try:
        result = run(synthetic_run["workdir"], config, "--dry-run", "--forceall", source=synthetic_run["source"])
    finally:
        write_config(synthetic_run["workdir"], synthetic_run["config"])
    assert result.returncode == 0, result.stderr[-3000:]
    return config_edits.dry_run_graph(result.stdout + result.stderr)


@pytest.fixture(scope="module")
def finished_graph(synthetic_run):
    return graph(synthetic_run, synthetic_run["config"])


@pytest.mark.parametrize("key", EVERY_KEY)
def test_editing_any_config_key_reruns_exactly_the_jobs_that_read_it(synthetic_run, finished_graph, key):
    """Each leaf key of the schema, edited on a finished run: Snakemake plans the
    jobs that refiner_lib.config_keys says read it (or that the edit creates)
    and their descendants, and no other job."""
    workdir, config = synthetic_run["workdir"], synthetic_run["config"]
    before = validate(copy.deepcopy(config))
    node = config_edits.leaf_keys(before)[key]
    changes = special_edits(key, config, workdir)
    if changes is None:
        try:
            value = config_keys.lookup(before, key)
        except KeyError:
            value = None
        changes = {key: config_edits.other_value(node, value)}
    after = config_edits.edited(before, changes)
    try:
        result = run(workdir, after, "--detailed-summary", source=synthetic_run["source"])
        assert result.returncode == 0, result.stderr[-3000:]
        outputs = config_edits.summary_outputs(result.stdout)
    finally:
        write_config(workdir, config)
    if config_edits.changes_inputs(outputs, finished_graph):
        outputs = config_edits.with_inputs(outputs, graph(synthetic_run, after))
    expected = config_edits.downstream(outputs, config_edits.reading_outputs(outputs, finished_graph, before, after))
    planned = {output for output in outputs if output.pending}
    unexpected, missing = sorted(map(str, planned - expected)), sorted(map(str, expected - planned))
    assert not unexpected and not missing, \
        f"{changes}: planned though it reads no edited key: {unexpected}; reads one but not planned: {missing}"


def test_the_readme_rerun_table_is_the_declaration(synthetic_run, finished_graph):
    """The README's table of which jobs read which key comes from refiner_lib.config_keys."""
    table = config_edits.rerun_table(validate(copy.deepcopy(synthetic_run["config"])), finished_graph)
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("<!-- rerun table:")[1].split("\n", 1)[1].split("<!-- end of rerun table -->")[0]
    assert block.strip() == table, f"README.md's rerun table should read:\n{table}"


def test_workflow_scripts_read_the_config_only_through_params():
    """A script reading the config directly would escape the declaration; only
    keys that change no result may be read so (config_keys.NO_RESULT)."""
    scripts = Path(__file__).parent.parent / "workflow_scripts"
    for script in scripts.glob("*.py"):
        # a key part taken from a wildcard (a dataset's name) stands for any: `datasets.*.split`
        for read in re.findall(r"snakemake\.config((?:\[(?:\"\w+\"|snakemake\.wildcards\.\w+)\])+)", script.read_text()):
            key = ".".join(part or "*" for part in re.findall(r"\[(?:\"(\w+)\"|snakemake\.wildcards\.\w+)\]", read))
            assert key in config_keys.NO_RESULT, f"{script.name} reads config key {key} outside its params"
