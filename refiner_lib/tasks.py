"""File-to-file steps of the study, one function per workflow rule.

Each reads its inputs, calls the library and writes its outputs atomically, so
it is usable without Snakemake (see README, 'Using the library').
"""
from __future__ import annotations

import time

from . import bm25, data, metrics, refine, stages, teacher, training
from .jsonl import InputError, load_jsonl, read_json, write_csv, write_json, write_jsonl, write_text
from .models import load_tokenizer
from .prompts import generator_messages

SUMMARY_COLUMNS = ["variant", "questions", "em", "f1", "accuracy", "dqa_accuracy", "adr_recall", "context_tokens",
                   "refine_seconds", "generate_seconds"]


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
          quantization, seed: int, checkpoint_dir=None, checkpoint_every: int = 0) -> None:
    records = read_json(records_path)
    if not isinstance(records, list):
        raise InputError(f"{records_path}: expected a JSON list of Alpaca records")
    for index, record in enumerate(records):
        for field in ("instruction", "input", "output"):
            if not isinstance(record, dict) or not isinstance(record.get(field), str):
                raise InputError(f"{records_path}: record {index}: field '{field}' missing or not a string")
    train_records, held_out = training.split_validation(records, validation["num_records"], seed)
    training.train_adapter(base_dir, train_records, adapter_dir, loss_csv, lora, schedule, quantization, seed,
                           held_out, validation["every_steps"], metrics_path, checkpoint_dir, checkpoint_every)


def refine_variant(method: str, eval_path, retrieval_path, corpus_path, generator_dir, teacher_labels: dict,
                   budget: int, max_context_tokens: int, output_path, student: dict | None = None) -> None:
    """method: 'full', 'teacher', or a student variant. teacher_labels maps each
    stage to its eval labels file; student = {model_dir, adapters: {stage: dir},
    quantization, batch_size, max_new_tokens} for a trained variant."""
    questions, retrieval = load_jsonl(eval_path), retrieval_map(retrieval_path)
    corpus = by_id(load_jsonl(corpus_path))
    tokenizer = load_tokenizer(generator_dir)
    started = time.perf_counter()
    if method == "full":
        rows = [{"id": q["id"], "context": refine.full_context([corpus[d] for d in retrieval[q["id"]]],
                                                               max_context_tokens, tokenizer)} for q in questions]
    else:
        analysis, trees, selection = stage_outputs(questions, retrieval, corpus, teacher_labels, student)
        rows = []
        for q in questions:
            doc_trees = [trees[d] for d in retrieval[q["id"]]]
            chosen = [selection[(q["id"], d)] for d in retrieval[q["id"]]]
            refined = refine.refine_question(q["question"], doc_trees, analysis[q["id"]]["probabilities"], chosen,
                                             budget, lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]))
            rows.append({"id": q["id"], "context": refined["context"], "label": analysis[q["id"]]["label"],
                         "probabilities": analysis[q["id"]]["probabilities"],
                         "selections": {d: s for d, s in zip(retrieval[q["id"]], chosen)}})
    seconds = time.perf_counter() - started
    for row in rows:
        row["context_tokens"] = len(tokenizer(row["context"], add_special_tokens=False)["input_ids"])
        row["refine_seconds"] = seconds / max(1, len(rows))
    write_jsonl(output_path, rows)


def student_backends(student: dict) -> dict:
    """stage -> backend: one base model with every stage's adapter, or (PTQ)
    one merged, quantized model per stage."""
    from .backend import HFBackend

    options = {"batch_size": student["batch_size"], "max_input_tokens": student["max_input_tokens"]}
    if student.get("stage_models"):
        return {stage: HFBackend(folder, **options) for stage, folder in student["stage_models"].items()}
    if not student.get("adapters"):
        return {}
    shared = HFBackend(student["model_dir"], adapters=student["adapters"], quantization=student["quantization"],
                       **options)
    return {stage: shared for stage in student["adapters"]}


def stage_outputs(questions, retrieval, corpus, teacher_labels: dict, student: dict | None):
    """Per-stage outputs for refinement: a student's trained stages run its
    models; every other stage keeps the teacher's labels."""
    backends = student_backends(student) if student else {}
    if "query_analysis" in backends:
        analysis = by_id(stages.model_query_analysis(backends["query_analysis"], questions))
    else:
        analysis = by_id(load_jsonl(teacher_labels["query_analysis"]))
    if "doc_structuring" in backends:
        doc_ids = teacher.documents_of(questions, retrieval)
        trees = by_id(stages.model_trees(backends["doc_structuring"], [corpus[d] for d in doc_ids],
                                         student["max_new_tokens"]["doc_structuring"]))
    else:
        trees = by_id(load_jsonl(teacher_labels["doc_structuring"]))
    if "global_selection" in backends:
        picked = stages.model_selection(backends["global_selection"], questions, retrieval, trees,
                                        student["max_new_tokens"]["global_selection"])
    else:
        picked = load_jsonl(teacher_labels["global_selection"])
    selection = {(r["id"], r["doc_id"]): r["selected"] for r in picked}
    return analysis, trees, selection


def generate_answers(refined_path, eval_path, generator_dir, max_new_tokens: int, batch_size: int,
                     max_input_tokens: int, output_path) -> None:
    from .backend import HFBackend

    questions = by_id(load_jsonl(eval_path))
    refined = load_jsonl(refined_path)
    backend = HFBackend(generator_dir, batch_size=batch_size, max_input_tokens=max_input_tokens)
    prompts = [backend.prompt(generator_messages(questions[r["id"]]["question"], r["context"])) for r in refined]
    started = time.perf_counter()
    answers = backend.generate(prompts, max_new_tokens)
    seconds = (time.perf_counter() - started) / max(1, len(prompts))
    write_jsonl(output_path, [{"id": r["id"], "prediction": a, "generate_seconds": seconds}
                              for r, a in zip(refined, answers)])


def evaluate(method: str, eval_path, refined_path, answers_path, teacher_query_labels, output_path) -> None:
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
        "refine_seconds": metrics.mean([refined[r["id"]]["refine_seconds"] for r in rows]),
        "generate_seconds": metrics.mean([answers[r["id"]]["generate_seconds"] for r in rows]),
    }
    write_json(output_path, {"summary": summary, "per_question": rows})


def summarize(metric_paths: list, csv_path, markdown_path) -> None:
    rows = [read_json(p)["summary"] for p in metric_paths]
    write_csv(csv_path, [{k: format_value(v) for k, v in r.items()} for r in rows], SUMMARY_COLUMNS)
    lines = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + "---|" * len(SUMMARY_COLUMNS)]
    lines += ["| " + " | ".join(format_value(r.get(c)) for c in SUMMARY_COLUMNS) + " |" for r in rows]
    write_text(markdown_path, "# Summary\n\n" + "\n".join(lines) + "\n")


def format_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)

