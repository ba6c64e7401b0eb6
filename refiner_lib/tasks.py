"""File-to-file steps of the study, one function per workflow rule.

Each reads its inputs, calls the library and writes its outputs atomically, so
it is usable without Snakemake (see README, 'Using the library').
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import bm25, data, measure, metrics, prompts, report, splits, stages, teacher
from .answers import extract_answer
from .config import CALIBRATED_STAGES
from .errors import InputError
from .jsonl import load_jsonl, read_json, read_jsonl, write_json, write_jsonl, write_text
from .measure import TimingSettings
from .models import load_tokenizer
from .inference import Prompt
from .prompts import ANSWER_LEAD_IN, ANSWER_STOP, DOCUMENTS_HEADER, generator_messages
from .refiner import Refiner, RefinerSpec, StudentModels, make_backend
from .settings import (BackendLimits, BackendSettings, GenerationSettings, MethodSettings, Quantization,
                       TeacherSettings, TrainingOutputs, TrainingSettings)

LOG = logging.getLogger(__name__)


def materialize_model(source: str, output_dir, sha256: str | None, trust_remote_code: bool) -> None:
    """A local Hugging Face folder (safetensors, tokenizer, chat template) for
    one entry of the config's `models`, checked before it is kept."""
    from .models import materialize

    materialize(source, output_dir, sha256, trust_remote_code)


def prepare_corpus(settings: data.CorpusSettings, corpus_path, trees_path) -> None:
    """A corpus, normalized document by document into its file (a corpus file is
    streamed through, never held whole), and the true trees known for it."""
    corpus, trees = data.prepare_corpus(settings)
    write_jsonl(corpus_path, corpus)
    write_jsonl(trees_path, trees)


def prepare_data(settings: data.DatasetSettings, questions_path, corpus_path=None) -> None:
    """A dataset's normalized questions; `corpus_path` (the prepared corpus) where
    its supporting titles are mapped to documents."""
    title_to_id = data.title_ids(record for _, record in read_jsonl(corpus_path)) if corpus_path else None
    write_jsonl(questions_path, data.prepare_questions(settings, title_to_id))


def corpus_subset(corpus_path, doc_ids) -> dict[str, dict]:
    """The documents of `doc_ids` (id -> document), read in one pass over the
    corpus: a job holds the documents it uses, not the corpus."""
    wanted = set(doc_ids)
    found = {r["id"]: r for _, r in read_jsonl(corpus_path) if r["id"] in wanted}
    missing = wanted - found.keys()
    if missing:
        raise InputError(f"{corpus_path}: no document '{sorted(missing)[0]}' (of {len(missing)} missing); "
                         "was the retrieval made over another corpus?")
    return found


def split_questions(questions_path, part: str, num_train: int, num_eval: int, seed: int, output_path) -> None:
    write_jsonl(output_path, splits.split_part(load_jsonl(questions_path), part, num_train, num_eval, seed))


def build_index(corpus_path, index_path, params: bm25.BM25Params) -> None:
    """Streamed from the corpus file into memory-mapped arrays (bm25.build_on_disk)."""
    bm25.build_on_disk(corpus_path, index_path, params)


def retrieve(index_path, questions_path, output_path, top_k: int) -> None:
    index = bm25.BM25Index.load(index_path)
    if top_k > len(index.doc_ids):
        raise InputError(f"retrieval.top_k = {top_k}, but the corpus has {len(index.doc_ids)} documents: "
                         "every question would get the whole corpus; lower retrieval.top_k")
    write_jsonl(output_path, bm25.retrieve(index, load_jsonl(questions_path), top_k))


def retrieval_map(path) -> dict[str, list[str]]:
    return {r["id"]: r["doc_ids"] for r in load_jsonl(path)}


def by_id(records: list[dict]) -> dict[str, dict]:
    return {r["id"]: r for r in records}


def teacher_backend(settings: TeacherSettings, model_dir):
    if settings.kind != "llm":
        return None
    from .backend import HFBackend

    return HFBackend(model_dir, adapters=settings.adapters, batch_size=settings.batch_size,
                     max_input_tokens=settings.max_input_tokens, precision=settings.precision)


def teacher_query_analysis(settings: TeacherSettings, inputs: Mapping, outputs: Mapping) -> None:
    """inputs: questions, model (an LLM teacher's base; absent for the oracle);
    outputs: records (Alpaca JSON for training), labels (JSONL)."""
    # the oracle's confidence when the config gives one (an LLM teacher reads none)
    confidence = {} if settings.oracle_confidence is None else {"oracle_confidence": settings.oracle_confidence}
    records, labels = teacher.query_analysis(settings.kind, load_jsonl(inputs["questions"]),
                                             teacher_backend(settings, inputs.get("model") or None), **confidence)
    write_json(outputs["records"], records)
    write_jsonl(outputs["labels"], labels)


def teacher_doc_structuring(settings: TeacherSettings, inputs: Mapping, outputs: Mapping) -> None:
    """inputs: questions, retrieval, corpus, trees (the true structure), model;
    outputs: records, labels (one tree per retrieved document)."""
    doc_ids = teacher.documents_of(load_jsonl(inputs["questions"]), retrieval_map(inputs["retrieval"]))
    records, trees = teacher.doc_structuring(
        settings.kind, doc_ids, corpus_subset(inputs["corpus"], doc_ids), by_id(load_jsonl(inputs["trees"])),
        teacher_backend(settings, inputs.get("model") or None), settings.generation_limit("doc_structuring"))
    write_json(outputs["records"], records)
    write_jsonl(outputs["labels"], trees)


def teacher_global_selection(settings: TeacherSettings, inputs: Mapping, outputs: Mapping) -> None:
    """inputs: questions, retrieval, structure (the document trees), model;
    outputs: records, labels (the chosen sections per question and document)."""
    records, labels = teacher.global_selection(
        settings.kind, load_jsonl(inputs["questions"]), retrieval_map(inputs["retrieval"]),
        by_id(load_jsonl(inputs["structure"])), teacher_backend(settings, inputs.get("model") or None),
        settings.generation_limit("global_selection"))
    write_json(outputs["records"], records)
    write_jsonl(outputs["labels"], labels)


def merge_training_records(parts: list[tuple], records_path, labels_path) -> None:
    """One stage's training set from every dataset's (records, labels) files, in
    order: the first N questions of each, as the seed project merged them."""
    records, labels = [], []
    for part_records, part_labels in parts:
        these = training_records(part_records)
        records += these
        labels += aligned_labels(these, part_records, part_labels)
    write_json(records_path, records)
    write_jsonl(labels_path, labels)


def train(inputs: Mapping, outputs: TrainingOutputs, settings: TrainingSettings, stage: str, threads: int = 1) -> None:
    """inputs: `model` (the base folder), `records` (Alpaca JSON) and, when
    distilling or for a stage in CALIBRATED_STAGES, `labels` (the teacher's
    rows, one per record). Distillation reads the teacher's scores from them; a
    query-analysis or global-selection student is also calibrated on the
    held-out records (see `calibrate`). With
    `schedule.processes` > 1 it runs in that many data-parallel processes
    (launch.py), which share `threads`."""
    from . import launch, training  # torch: imported by the model steps only, so light steps start fast

    processes = settings.schedule.processes
    if processes > 1 and launch.world_size() == 1:
        job = {"inputs": {k: str(v) for k, v in inputs.items() if v}, "outputs": outputs.as_dict(),
               "settings": settings.as_dict(), "stage": stage}
        launch.run_processes(job, Path(outputs.adapter_dir).parent / "train_job.json", processes, threads)
        return

    records_path, labels_path = inputs["records"], inputs.get("labels") or None
    records = training_records(records_path)
    if stage in CALIBRATION_FILES and not labels_path:
        raise InputError(f"{records_path}: a {stage} student is calibrated on the teacher's answers to the "
                         "records training holds out: give its labels file (inputs['labels'])")
    if settings.objective.distilled or stage in CALIBRATION_FILES:
        labels = aligned_labels(records, records_path, labels_path)
    if settings.objective.distilled:
        attach_soft_targets(records, labels, stage, labels_path, settings.objective.temperature)
    if stage in CALIBRATION_FILES:
        attach_teacher_answers(stage, records, labels, labels_path)
    train_records, held_out = splits.split_validation(records, settings.validation.num_records, settings.seed)
    training.train_adapter(inputs["model"], train_records, settings, outputs, held_out)
    if stage in CALIBRATION_FILES and launch.is_main_process():
        from .backend import HFBackend

        backend = HFBackend(inputs["model"], adapters={stage: str(outputs.adapter_dir)},
                            quantization=settings.quantization, precision=settings.precision)
        write_json(Path(outputs.adapter_dir) / CALIBRATION_FILES[stage], calibrate(stage, backend, held_out))


def training_records(records_path) -> list[dict]:
    records = read_json(records_path)
    if not isinstance(records, list):
        raise InputError(f"{records_path}: expected a JSON list of Alpaca records")
    for index, record in enumerate(records):
        for field in ("instruction", "input", "output"):
            if not isinstance(record, dict) or not isinstance(record.get(field), str):
                raise InputError(f"{records_path}: record {index}: field '{field}' missing or not a string")
    return records


def aligned_labels(records: list[dict], records_path, labels_path) -> list[dict]:
    """The teacher's labels file: one row per training record, in the same order."""
    labels = load_jsonl(labels_path)
    if len(labels) != len(records):
        raise InputError(f"{labels_path}: {len(labels)} rows for the {len(records)} records of {records_path}")
    return labels


def attach_selections(records: list[dict], labels: list[dict], labels_path) -> None:
    """Each global-selection record's candidate titles and the teacher's choice."""
    for number, (record, label) in enumerate(zip(records, labels), start=1):
        if not isinstance(label.get("scores"), dict) or not isinstance(label.get("selected"), list):
            raise InputError(f"{labels_path}:{number}: fields 'scores' (title -> score) and 'selected' are required")
        record[TITLES], record[SELECTED] = list(label["scores"]), list(label["selected"])


def attach_alphas(records: list[dict], labels: list[dict], labels_path) -> None:
    """Each query-analysis record's teacher P(Global): its probability, or its label as 0 or 1."""
    for number, (record, label) in enumerate(zip(records, labels), start=1):
        probabilities = label.get("probabilities")
        if isinstance(probabilities, dict) and isinstance(probabilities.get("Global"), (int, float)):
            record[ALPHA] = float(probabilities["Global"])
        elif label.get("label") in prompts.QUERY_LABELS:
            record[ALPHA] = float(label["label"] == "Global")
        else:
            raise InputError(f"{labels_path}:{number}: field 'probabilities' ({{Local, Global}}) or 'label' "
                             "(Local or Global) is required")


TITLES, SELECTED = "_titles", "_selected"  # keys a global-selection record carries for calibration
ALPHA = "_alpha"  # the teacher's P(Global), which a query-analysis record carries for calibration
# what a trained student of these stages is calibrated with, on the records training held out
CALIBRATION_FILES = dict(zip(CALIBRATED_STAGES, (stages.ANALYSIS_FILE, stages.SELECTION_FILE)))


def attach_teacher_answers(stage: str, records: list[dict], labels: list[dict], labels_path) -> None:
    (attach_selections if stage == "global_selection" else attach_alphas)(records, labels, labels_path)


def calibrate(stage: str, backend, held_out: list[dict]) -> dict:
    """A student's calibration, from its own scores of records it never trained
    on: global selection's threshold that best reproduces the teacher's
    selections; query analysis's Platt scaling of its log-odds towards the
    teacher's P(Global) (stages.fit_alpha_calibration)."""
    if not held_out:
        raise InputError(f"training.validation.num_records: a {stage} student needs held-out records "
                         "to be calibrated on (set it above 0)")
    if stage == "query_analysis":
        probabilities = stages.label_probabilities(backend, held_out)
        return stages.fit_alpha_calibration([stages.global_log_odds(p) for p in probabilities],
                                            [r[ALPHA] for r in held_out])
    probabilities = stages.title_probabilities(backend.use("global_selection"), held_out,
                                               [r[TITLES] for r in held_out])
    return stages.best_threshold(probabilities, [r[SELECTED] for r in held_out])


@dataclass(frozen=True)
class HeldOutRecords:
    """The records of a stage that training held out (same split, same seed),
    with the teacher's answers: what a student is calibrated on."""
    stage: str
    records_path: str
    labels_path: str
    num_records: int  # training.validation.num_records
    seed: int

    def load(self) -> list[dict]:
        records = training_records(self.records_path)
        attach_teacher_answers(self.stage, records, aligned_labels(records, self.records_path, self.labels_path),
                               self.labels_path)
        return splits.split_validation(records, self.num_records, self.seed)[1]


def quantize_student(base_dir, adapter_dir, output_dir, ptq: Quantization, precision: str | None = None,
                     held_out: HeldOutRecords | None = None) -> None:
    """Post-training quantization of a trained adapter merged into its base. A
    calibrated student (held_out given) is calibrated again, on the quantized
    model's own scores of the held-out records: quantization moves them."""
    from .quantize import merge_and_quantize

    def calibrate_quantized(folder: Path) -> None:
        from .backend import HFBackend

        write_json(folder / CALIBRATION_FILES[held_out.stage],
                   calibrate(held_out.stage, HFBackend(folder, precision=precision), held_out.load()))

    merge_and_quantize(base_dir, adapter_dir, output_dir, ptq, precision, calibrate_quantized if held_out else None)


def attach_soft_targets(records: list[dict], labels: list[dict], stage: str, labels_path,
                        temperature: float) -> None:
    """The teacher's distribution for each record, from its labels row."""
    from .distillation import soft_target
    from .training import SOFT_TARGET

    for number, (record, label) in enumerate(zip(records, labels), start=1):
        target = soft_target(stage, label, temperature, f"{labels_path}:{number}")
        if target:
            record[SOFT_TARGET] = target


def refiner_spec(method: str, settings: MethodSettings, files: dict, corpus: dict | None = None) -> RefinerSpec:
    """A method's refiner from its settings (the `refine` rule's params) and
    files: `retrieval`, `corpus`, `{stage}_labels` for the teacher's labels,
    `student` (its base) and one folder per trained stage."""
    refinement = settings.refinement
    student = None
    if settings.trained_stages:
        per_stage = {stage: str(files[stage]) for stage in settings.trained_stages}
        # a PTQ variant brings one merged, quantized model per stage; the others bring adapters
        student = StudentModels(
            model_dir=str(files["student"]), adapters={} if settings.ptq else per_stage,
            stage_models=per_stage if settings.ptq else {}, quantization=settings.quantization,
            backend=settings.backend, batch_size=refinement.batch_size,
            max_input_tokens=refinement.max_input_tokens, max_new_tokens=refinement.max_new_tokens)
    labels = {stage: files[f"{stage}_labels"] for stage in prompts.STAGES if f"{stage}_labels" in files}
    scorer = bm25.BM25Params(**settings.local_scorer) if settings.local_scorer else bm25.BM25Params()
    retrieval = retrieval_map(files["retrieval"])
    if corpus is None:  # the documents retrieved for these questions (the demo app brings the whole corpus)
        corpus = corpus_subset(files["corpus"], (d for ids in retrieval.values() for d in ids))
    return RefinerSpec(method=method, retrieval=retrieval, corpus=corpus,
                       teacher_labels=labels,
                       budget=refinement.budget_tokens, max_context_tokens=settings.max_context_tokens,
                       student=student, local_scorer=scorer)


def refine_variant(spec: RefinerSpec, eval_path, generator_dir, output_path) -> None:
    """The quality pass: every eval question refined, with the FLOPs it took and
    the tokens of its retrieved and refined text. Nothing is timed here (see
    time_refiners), so this pass may share the machine."""
    refiner = Refiner(spec, load_tokenizer(generator_dir))
    rows = []
    for q in load_jsonl(eval_path):
        flops_before = refiner.flops()
        row = refiner.refine(q)
        row.update(refine_flops=refiner.flops() - flops_before, context_tokens=refiner.count_tokens(row["context"]),
                   retrieved_tokens=refiner.count_tokens(refiner.retrieved_text(q["id"])))
        rows.append(row)
    check_budget(rows, spec.budget)
    write_jsonl(output_path, rows)


def check_budget(rows: list[dict], budget: int | None) -> None:
    """Contexts left empty because nothing fits the budget: counted in the log
    (and in each row's `over_budget`); all of them is an error, not a result."""
    over = [r["id"] for r in rows if r.get("over_budget")]
    if not over:
        return
    if len(over) == len(rows):
        raise InputError(f"refinement.budget_tokens = {budget}: no retrieved section fits it for any of the "
                         f"{len(rows)} questions, so every refined context would be empty; raise the budget")
    LOG.warning("%d of %d refined contexts are empty: no retrieved section fits refinement.budget_tokens = %s "
                "(first: question %s)", len(over), len(rows), budget, over[0])


def time_refiners(refiners: Mapping[str, tuple[MethodSettings, dict]], eval_path, generator_dir,
                  timing: TimingSettings, cost_path) -> None:
    """The refiners' latency pass, run alone on the machine: every method
    (refiners: method -> its settings and files, as refiner_spec takes them) in
    turn, each in a process of its own, so that the peak memory it reports is its
    own; the same seeded sample of questions for each."""
    corpus, methods = None, {}
    for method, (settings, files) in refiners.items():
        # `qlora@vllm` refines as `qlora`, on vLLM (config_keys.base_method would import the config's YAML
        # reader into the inference env, which lacks it)
        spec = refiner_spec(method.split("@")[0], settings, files, corpus)
        corpus = spec.corpus  # every method refines the documents retrieved for the same questions
        methods[method] = measure.in_own_process(refiner_timing, spec, eval_path, generator_dir, timing)
    write_json(cost_path, {"order": "one method after another, each in a process of its own", "methods": methods})


def refiner_timing(spec: RefinerSpec, eval_path, generator_dir, timing: TimingSettings) -> dict:
    """One refiner's latency: a seeded sample of questions refined one at a
    time after untimed warm-up ones; with the refiner's parameters, weights,
    sizes and this process' peak memory."""
    warmup, timed = measure.latency_sample(load_jsonl(eval_path), timing)
    refiner = Refiner(spec, load_tokenizer(generator_dir))

    def cold(question: dict) -> dict:
        """Each timed question pays for its own documents: no prompt prefix a
        question before it computed is reused (see inference.Prompt)."""
        for backend in refiner.distinct_backends():
            backend.forget_prefixes()
        return refiner.refine(question)

    seconds = measure.time_each(cold, warmup, timed)
    return {**refiner.cost(), **measure.timing_summary(seconds, timing, [q["id"] for q in timed])}


def answer_prompts(backend, refined: list[dict], questions: dict) -> list[str]:
    """The generator's prompts; the instruction and worked examples before the
    documents recur in every one (see inference.Prompt)."""
    return [Prompt.shared_through(backend.prompt(generator_messages(questions[r["id"]]["question"], r["context"])),
                                  DOCUMENTS_HEADER) for r in refined]


def generate_answers(refined_path, eval_path, generator_dir, generation: GenerationSettings, output_path,
                     backend: BackendSettings = BackendSettings()) -> None:
    """The quality pass of the generator: batched greedy answers to every eval
    question, the raw generation kept beside the extracted short answer."""
    generator = generator_backend(generator_dir, generation, backend)
    write_jsonl(output_path, answer_rows(generator, generation, load_jsonl(refined_path), by_id(load_jsonl(eval_path))))


def generator_backend(generator_dir, generation: GenerationSettings, backend: BackendSettings = BackendSettings()):
    return make_backend(backend, generator_dir, BackendLimits(generation.batch_size, generation.window,
                                                              generation.max_new_tokens))


def answer_rows(generator, generation: GenerationSettings, refined: list[dict], questions: dict) -> list[dict]:
    """Greedy answers to refined contexts, `generation.batch_size` at a time:
    per question its extracted answer, the raw generation and its FLOPs."""
    texts, tokens = generator.generate_counted(answer_prompts(generator, refined, questions),
                                               generation.max_new_tokens, ANSWER_STOP)
    parameters = generator.active_parameters()
    # `generation` is what the model wrote after the lead-in; the prediction is cut from both
    return [{"id": r["id"], "prediction": extract_answer(f"{ANSWER_LEAD_IN} {raw}"), "generation": raw,
             "generate_flops": measure.forward_flops(parameters, count)}
            for r, raw, count in zip(refined, texts, tokens)]


def time_generation(refined_paths: dict, inputs: Mapping, generation: GenerationSettings, timing: TimingSettings,
                    cost_path, backend: BackendSettings = BackendSettings()) -> None:
    """The generator's latency pass, alone on the machine, for every method at
    once (refined_paths: method -> its refined contexts): one generator, the same
    seeded sample of questions, each answered on its own after the generator's
    warm-up, the methods interleaved question by question in rotating order, so
    that a drift of the machine's speed falls on every method alike. Each answer is exactly
    generation.max_new_tokens tokens: rows differ by their contexts only, not by
    how long their answers happen to be. inputs: questions, generator (its folder)."""
    questions = by_id(load_jsonl(inputs["questions"]))
    refined = {method: by_id(load_jsonl(path)) for method, path in refined_paths.items()}
    common = set.intersection(*(set(rows) for rows in refined.values()))
    warmup, timed = measure.latency_sample([q for i, q in questions.items() if i in common], timing)
    generator = make_backend(backend, inputs["generator"], BackendLimits(1, generation.window,
                                                                         generation.max_new_tokens))

    def prompts(part: list[dict]) -> dict[str, list[str]]:
        return {method: answer_prompts(generator, [rows[q["id"]] for q in part], questions)
                for method, rows in refined.items()}

    # one generator serves every method, so it warms up once: warm-up question j
    # on method j mod n's context (the refiners, each a model of its own, warm up each)
    warm, methods = prompts(warmup), list(refined)
    seconds = measure.time_interleaved(
        lambda prompt: generator.generate([prompt], generation.max_new_tokens, fixed_length=True),
        {m: warm[m][i::len(methods)] for i, m in enumerate(methods)}, prompts(timed))
    weights = generator.weights()
    memory, memory_kind = measure.peak_memory_mb()
    write_json(cost_path, {"generator_parameters": weights["parameters"],
                           "generator_memory_bytes": weights["memory_bytes"], "peak_memory_mb": round(memory, 1),
                           "peak_memory_kind": memory_kind, "warmup_questions": timing.warmup_questions,
                           "timed_questions": [q["id"] for q in timed], "order": "interleaved, rotating",
                           "methods": {method: {"latency_seconds": measure.latency_summary(values), "seconds": values}
                                       for method, values in seconds.items()}})


def method_timing(cost: dict, method: str, rule: str) -> dict:
    """One method's view of a latency pass's file (`rule`'s output: it times
    every method of a backend)."""
    if method not in cost.get("methods", {}):
        raise InputError(f"{rule}: no row for method '{method}' (rerun {rule})")
    shared = {k: v for k, v in cost.items() if k != "methods"}
    return {**shared, **cost["methods"][method]}


def evaluate(method: str, inputs: Mapping, output_path, metric_names=data.SHORT_FORM, dataset: str = "") -> None:
    """Per question: the dataset's answer metrics, refinement quality (the
    stages' own metrics and the refined context's answer recall and
    compression); their means and the costs in `summary`. inputs: questions,
    refined, answers, and optionally query_labels (the teacher's, where the data
    has no labels), refine_cost and generate_cost (the latency passes' files)."""
    questions = load_jsonl(inputs["questions"])
    refined, answers = by_id(load_jsonl(inputs["refined"])), by_id(load_jsonl(inputs["answers"]))
    query_labels = inputs.get("query_labels")
    reference_labels = by_id(load_jsonl(query_labels)) if query_labels else {}
    rows = [{"id": q["id"], **metrics.answer_metrics(answers[q["id"]]["prediction"], q, metric_names),
             **metrics.refinement_metrics(q, refined[q["id"]], reference_labels.get(q["id"]))} for q in questions]
    summary = {"dataset": dataset, "variant": method, "questions": len(rows), **metrics.means(rows),
               "context_tokens": metrics.mean([refined[r["id"]]["context_tokens"] for r in rows]),
               "empty_contexts": sum(1 for r in rows if not refined[r["id"]]["context_tokens"]),
               "refine_flops_per_query": metrics.mean([refined[r["id"]]["refine_flops"] for r in rows]),
               "generate_flops_per_query": metrics.mean([answers[r["id"]]["generate_flops"] for r in rows])}
    if inputs.get("refine_cost") and inputs.get("generate_cost"):
        summary.update(report.cost_columns(method_timing(read_json(inputs["refine_cost"]), method, "time_refine"),
                                           method_timing(read_json(inputs["generate_cost"]), method, "time_generate")))
    write_json(output_path, {"summary": summary, "per_question": rows})


def summarize(metric_paths: list, training_paths: list, outputs: Mapping) -> None:
    """outputs: csv (summary.csv: every column, quality means with 95% intervals,
    per dataset and variant, and their average over several datasets), paired
    (paired.csv: each variant against the reference methods), md (summary.md:
    the tables and, in words, which differences are significant) and html."""
    import pandas as pd

    documents = [read_json(p) for p in metric_paths]
    summary, paired = report.summary_frame(documents), report.paired_frame(documents)
    costs = pd.DataFrame([report.training_row(p, read_json(p)) for p in training_paths])
    write_text(outputs["csv"], report.csv_text(summary, report.SUMMARY_COLUMNS))
    write_text(outputs["paired"], report.csv_text(paired, report.PAIRED_COLUMNS))
    write_text(outputs["md"], report.markdown(summary, costs, paired))
    write_text(outputs["html"], report.html(summary, paired))


def plot_results(summary_path, loss_paths: list, outputs: Mapping) -> None:
    """The trade-off plots (quality against latency, memory and FLOPs), the
    quality plot with intervals, and the loss curves."""
    from . import plots  # matplotlib: only this step draws

    rows = plots.read_rows(summary_path)
    for cost in ("latency", "memory", "flops"):
        plots.tradeoff_plot(rows, cost, outputs[cost])
    plots.quality_plot(rows, outputs["quality"])
    plots.loss_plot(list(loss_paths), outputs["losses"])
