"""File-to-file steps of the study, one function per workflow rule.

Each reads its inputs, calls the library and writes its outputs atomically, so
it is usable without Snakemake (see README, 'Using the library').
"""
from __future__ import annotations

import time

from . import bm25, data, distillation, measure, metrics, refine, report, stages, teacher, training
from .jsonl import InputError, load_jsonl, read_json, write_csv, write_json, write_jsonl, write_text
from .models import load_tokenizer
from .prompts import generator_messages



def prepare_data(data_config: dict, questions_path, corpus_path, trees_path) -> None:
    prepared = data.prepare(data_config)
    write_jsonl(corpus_path, prepared["corpus"])
    write_jsonl(trees_path, prepared["trees"])
    write_jsonl(questions_path, prepared["questions"])


def split_questions(questions_path, part: str, num_train: int, num_eval: int, seed: int, output_path) -> None:
    write_jsonl(output_path, data.split_part(load_jsonl(questions_path), part, num_train, num_eval, seed))


def build_index(corpus_path, index_path, k1: float, b: float, epsilon: float) -> None:
    bm25.build_index(load_jsonl(corpus_path), k1, b, epsilon).save(index_path)


def retrieve(index_path, questions_path, output_path, top_k: int) -> None:
    write_jsonl(output_path, bm25.retrieve(bm25.BM25Index.load(index_path), load_jsonl(questions_path), top_k))


def retrieval_map(path) -> dict[str, list[str]]:
    return {r["id"]: r["doc_ids"] for r in load_jsonl(path)}


def by_id(records: list[dict]) -> dict[str, dict]:
    return {r["id"]: r for r in records}


def teacher_backend(teacher_config: dict, model_dir):
    if teacher_config["kind"] != "llm":
        return None
    from .backend import HFBackend

    return HFBackend(model_dir, adapters=teacher_config["adapters"], batch_size=teacher_config["batch_size"],
                     max_input_tokens=teacher_config["max_input_tokens"])


def teacher_query_analysis(teacher_config, questions_path, model_dir, records_path, labels_path) -> None:
    records, labels = teacher.query_analysis(teacher_config["kind"], load_jsonl(questions_path),
                                             teacher_backend(teacher_config, model_dir))
    write_json(records_path, records)
    write_jsonl(labels_path, labels)


def teacher_doc_structuring(teacher_config, questions_path, retrieval_path, corpus_path, trees_path, model_dir,
                            records_path, labels_path) -> None:
    doc_ids = teacher.documents_of(load_jsonl(questions_path), retrieval_map(retrieval_path))
    records, trees = teacher.doc_structuring(
        teacher_config["kind"], doc_ids, by_id(load_jsonl(corpus_path)), by_id(load_jsonl(trees_path)),
        teacher_backend(teacher_config, model_dir), teacher_config["max_new_tokens"]["doc_structuring"])
    write_json(records_path, records)
    write_jsonl(labels_path, trees)


def teacher_global_selection(teacher_config, questions_path, retrieval_path, structure_path, model_dir,
                             records_path, labels_path) -> None:
    records, labels = teacher.global_selection(
        teacher_config["kind"], load_jsonl(questions_path), retrieval_map(retrieval_path),
        by_id(load_jsonl(structure_path)), teacher_backend(teacher_config, model_dir),
        teacher_config["max_new_tokens"]["global_selection"])
    write_json(records_path, records)
    write_jsonl(labels_path, labels)


def train(base_dir, records_path, adapter_dir, loss_csv, metrics_path, lora: dict, schedule: dict, validation: dict,
          quantization, seed: int, checkpoint_dir=None, checkpoint_every: int = 0, objective: dict | None = None,
          stage: str | None = None, labels_path=None) -> None:
    """objective: {kind: sft} or {kind: kd, temperature, weight}; distillation
    reads the teacher's scores for `stage` from labels_path (one row per record)."""
    records = read_json(records_path)
    if not isinstance(records, list):
        raise InputError(f"{records_path}: expected a JSON list of Alpaca records")
    for index, record in enumerate(records):
        for field in ("instruction", "input", "output"):
            if not isinstance(record, dict) or not isinstance(record.get(field), str):
                raise InputError(f"{records_path}: record {index}: field '{field}' missing or not a string")
    if objective and objective["kind"] == "kd":
        attach_soft_targets(records, records_path, stage, labels_path, objective["temperature"])
    train_records, held_out = training.split_validation(records, validation["num_records"], seed)
    training.train_adapter(base_dir, train_records, adapter_dir, loss_csv, lora, schedule, quantization, seed,
                           held_out, validation["every_steps"], metrics_path, checkpoint_dir, checkpoint_every,
                           objective)


def attach_soft_targets(records: list[dict], records_path, stage: str, labels_path, temperature: float) -> None:
    """The teacher's distribution for each record, from its labels file (same order)."""
    labels = load_jsonl(labels_path)
    if len(labels) != len(records):
        raise InputError(f"{labels_path}: {len(labels)} rows for the {len(records)} records of {records_path}")
    for number, (record, label) in enumerate(zip(records, labels), start=1):
        target = distillation.soft_target(stage, label, temperature, f"{labels_path}:{number}")
        if target:
            record[training.SOFT_TARGET] = target


def refine_variant(method: str, eval_path, retrieval_path, corpus_path, generator_dir, teacher_labels: dict,
                   budget: int, max_context_tokens: int, output_path, student: dict | None = None,
                   cost_path=None, warmup_questions: int = 2) -> None:
    """method: 'full', 'teacher', or a student variant. teacher_labels maps each
    stage to its eval labels file; student = {model_dir, adapters: {stage: dir},
    stage_models: {stage: dir}, quantization, batch_size, max_input_tokens,
    max_new_tokens} for a trained variant. Each question is refined on its own
    and timed, after `warmup_questions` untimed ones; cost_path gets the
    latency summary, peak memory, parameters, FLOPs and sizes."""
    questions, retrieval = load_jsonl(eval_path), retrieval_map(retrieval_path)
    tokenizer = load_tokenizer(generator_dir)
    refiner = Refiner(method, retrieval, by_id(load_jsonl(corpus_path)), teacher_labels, student, budget,
                      max_context_tokens, tokenizer)
    for q in questions[:warmup_questions]:
        refiner.refine(q)
    rows = []
    for q in questions:
        flops_before, started = refiner.flops(), time.perf_counter()
        row = refiner.refine(q)
        row.update(refine_seconds=time.perf_counter() - started, refine_flops=refiner.flops() - flops_before,
                   context_tokens=refiner.count_tokens(row["context"]))
        rows.append(row)
    write_jsonl(output_path, rows)
    if cost_path:
        write_json(cost_path, {**refiner.cost(), **inference_cost(rows, "refine", warmup_questions)})


def inference_cost(rows: list[dict], step: str, warmup_questions: int) -> dict:
    memory, kind = measure.peak_memory_mb()
    return {"latency_seconds": measure.latency_summary([r[f"{step}_seconds"] for r in rows]),
            "flops_per_query": measure.average([r[f"{step}_flops"] for r in rows]),
            "peak_memory_mb": round(memory, 1), "peak_memory_kind": kind, "warmup_questions": warmup_questions}


class Refiner:
    """One question at a time: a student's trained stages run its models, every
    other stage keeps the teacher's labels; then LongRefiner's scoring under the
    token budget (or, for `full`, the retrieved text cut to the window)."""

    def __init__(self, method, retrieval, corpus, teacher_labels, student, budget, max_context_tokens, tokenizer):
        self.method, self.retrieval, self.corpus, self.student = method, retrieval, corpus, student
        self.budget, self.max_context_tokens, self.tokenizer = budget, max_context_tokens, tokenizer
        self.backends = student_backends(student) if student else {}
        labels = {stage: load_jsonl(path) for stage, path in teacher_labels.items()}
        self.analysis = by_id(labels.get("query_analysis", []))
        self.trees = by_id(labels.get("doc_structuring", []))
        self.selection = {(r["id"], r["doc_id"]): r["selected"] for r in labels.get("global_selection", [])}
        self.structured: dict[str, dict] = {}  # documents a trained HDS student has structured

    def flops(self) -> int:
        return sum(b.flops for b in self.distinct_backends())

    def distinct_backends(self) -> list:
        return list({id(b): b for b in self.backends.values()}.values())

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def refine(self, q: dict) -> dict:
        doc_ids = self.retrieval[q["id"]]
        if self.method == "full":
            return {"id": q["id"], "context": refine.full_context([self.corpus[d] for d in doc_ids],
                                                                  self.max_context_tokens, self.tokenizer)}
        if "query_analysis" in self.backends:
            analysis = stages.model_query_analysis(self.backends["query_analysis"], [q])[0]
        else:
            analysis = self.analysis[q["id"]]
        trees = {d: self.tree(d) for d in doc_ids}
        if "global_selection" in self.backends:
            picked = stages.model_selection(self.backends["global_selection"], [q], self.retrieval, trees,
                                            self.student["max_new_tokens"]["global_selection"])
            chosen = [r["selected"] for r in picked]
        else:
            chosen = [self.selection[(q["id"], d)] for d in doc_ids]
        refined = refine.refine_question(q["question"], [trees[d] for d in doc_ids], analysis["probabilities"],
                                         chosen, self.budget, self.count_tokens)
        return {"id": q["id"], "context": refined["context"], "label": analysis["label"],
                "probabilities": analysis["probabilities"], "selections": dict(zip(doc_ids, chosen))}

    def tree(self, doc_id: str) -> dict:
        if "doc_structuring" not in self.backends:
            return self.trees[doc_id]
        if doc_id not in self.structured:  # a document is structured once, as LongRefiner caches it
            self.structured[doc_id] = stages.model_trees(self.backends["doc_structuring"], [self.corpus[doc_id]],
                                                         self.student["max_new_tokens"]["doc_structuring"])[0]
        return self.structured[doc_id]

    def cost(self) -> dict:
        """Parameters and weights of the refiner's models, and their sizes on disk."""
        loaded = [b.weights() for b in self.distinct_backends()]
        student = self.student or {}
        adapters = list(student.get("adapters", {}).values())
        stage_models = list(student.get("stage_models", {}).values())
        disk = sum(measure.weight_bytes(folder) for folder in stage_models)
        if adapters:
            disk += measure.weight_bytes(student["model_dir"])
        return {"method": self.method, "refiner_parameters": sum(w["parameters"] for w in loaded),
                "refiner_memory_bytes": sum(w["memory_bytes"] for w in loaded),
                "adapter_bytes": sum(measure.folder_bytes(a) for a in adapters),
                "refiner_disk_bytes": disk + sum(measure.folder_bytes(a) for a in adapters)}


def make_backend(settings: dict | None, model_dir, adapters: dict | None = None, quantization: dict | None = None,
                 batch_size: int = 8, max_input_tokens: int = 2048, max_new_tokens: int = 512):
    """Hugging Face transformers, or vLLM (settings {kind: vllm, dtype, kv_cache_gb}):
    the same interface. vLLM loads the 16-bit base: `quantization` is for HF only."""
    if settings and settings.get("kind") == "vllm":
        from .vllm_backend import VLLMBackend

        return VLLMBackend(model_dir, adapters=adapters, batch_size=batch_size, max_input_tokens=max_input_tokens,
                           max_new_tokens=max_new_tokens, dtype=settings["dtype"], kv_cache_gb=settings["kv_cache_gb"])
    from .backend import HFBackend

    return HFBackend(model_dir, adapters=adapters, quantization=quantization, batch_size=batch_size,
                     max_input_tokens=max_input_tokens)


def student_backends(student: dict) -> dict:
    """stage -> backend: one base model with every stage's adapter, or (PTQ)
    one merged, quantized model per stage."""
    options = {"batch_size": student["batch_size"], "max_input_tokens": student["max_input_tokens"],
               "max_new_tokens": max(student["max_new_tokens"].values())}
    settings = student.get("backend")
    if student.get("stage_models"):
        return {stage: make_backend(settings, folder, **options) for stage, folder in student["stage_models"].items()}
    if not student.get("adapters"):
        return {}
    shared = make_backend(settings, student["model_dir"], adapters=student["adapters"],
                          quantization=student["quantization"], **options)
    return {stage: shared for stage in student["adapters"]}


def generate_answers(refined_path, eval_path, generator_dir, max_new_tokens: int, batch_size: int,
                     max_input_tokens: int, output_path, cost_path=None, warmup_questions: int = 2,
                     backend_settings: dict | None = None) -> None:
    """Answer each question on its own, timed after `warmup_questions` untimed
    ones (batch_size applies to the warm-up-free batch API, not to latency)."""
    questions = by_id(load_jsonl(eval_path))
    refined = load_jsonl(refined_path)
    backend = make_backend(backend_settings, generator_dir, batch_size=batch_size, max_input_tokens=max_input_tokens,
                           max_new_tokens=max_new_tokens)
    prompts = [backend.prompt(generator_messages(questions[r["id"]]["question"], r["context"])) for r in refined]
    for prompt in prompts[:warmup_questions]:
        backend.generate([prompt], max_new_tokens)
    rows = []
    for r, prompt in zip(refined, prompts):
        flops_before, started = backend.flops, time.perf_counter()
        answer = backend.generate([prompt], max_new_tokens)[0]
        rows.append({"id": r["id"], "prediction": answer, "generate_seconds": time.perf_counter() - started,
                     "generate_flops": backend.flops - flops_before})
    write_jsonl(output_path, rows)
    if cost_path:
        weights = backend.weights()
        write_json(cost_path, {"generator_parameters": weights["parameters"],
                               "generator_memory_bytes": weights["memory_bytes"],
                               **inference_cost(rows, "generate", warmup_questions)})


def evaluate(method: str, eval_path, refined_path, answers_path, teacher_query_labels, output_path,
             refine_cost_path=None, generate_cost_path=None) -> None:
    questions = load_jsonl(eval_path)
    refined, answers = by_id(load_jsonl(refined_path)), by_id(load_jsonl(answers_path))
    reference_labels = by_id(load_jsonl(teacher_query_labels)) if teacher_query_labels else {}
    rows = []
    for q in questions:
        prediction = answers[q["id"]]["prediction"]
        row = {"id": q["id"], "em": metrics.exact_match(prediction, q["golden_answers"]),
               "f1": metrics.f1_score(prediction, q["golden_answers"]),
               "accuracy": metrics.accuracy(prediction, q["golden_answers"])}
        refined_row = refined[q["id"]]
        if "label" in refined_row:
            gold_label = q.get("label") or reference_labels[q["id"]]["label"]
            row["dqa_correct"] = float(refined_row["label"] == gold_label)
            gold = [(s["doc_id"], stages.gold_titles(q, s["doc_id"])) for s in q.get("supporting", [])]
            places = {(d, t) for d, titles in gold for t in titles}
            found = {(d, t) for d, t in places if t in refined_row["selections"].get(d, [])}
            if places:
                row["adr_recall"] = len(found) / len(places)
        rows.append(row)
    summary = {
        "variant": method, "questions": len(rows),
        **{k: metrics.mean([r[k] for r in rows]) for k in ("em", "f1", "accuracy")},
        "dqa_accuracy": metrics.mean([r["dqa_correct"] for r in rows if "dqa_correct" in r]),
        "adr_recall": metrics.mean([r["adr_recall"] for r in rows if "adr_recall" in r]),
        "context_tokens": metrics.mean([refined[r["id"]]["context_tokens"] for r in rows]),
    }
    if refine_cost_path and generate_cost_path:
        summary.update(report.cost_columns(read_json(refine_cost_path), read_json(generate_cost_path)))
    write_json(output_path, {"summary": summary, "per_question": rows})


def summarize(metric_paths: list, training_paths: list, csv_path, markdown_path) -> None:
    """summary.csv (every column) and summary.md (the inference and training tables)."""
    rows = [read_json(p)["summary"] for p in metric_paths]
    training_rows = [report.training_row(p, read_json(p)) for p in training_paths]
    write_csv(csv_path, [{k: report.format_value(v) for k, v in r.items()} for r in rows], report.SUMMARY_COLUMNS)
    write_text(markdown_path, report.markdown(rows, training_rows))
