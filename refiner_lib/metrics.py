"""Answer metrics with SQuAD/HotpotQA normalization, max over golden answers;
ASQA's STR-EM over its readings and ROUGE-L for long-form answers."""
from __future__ import annotations

import re
import string
from collections import Counter

from .stages import gold_titles

ARTICLES = re.compile(r"\b(a|an|the)\b")
PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in PUNCTUATION)
    text = ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golden: list[str]) -> float:
    normalized = normalize_answer(prediction)
    return float(any(normalized == normalize_answer(g) for g in golden))


def token_f1(prediction: str, answer: str) -> float:
    """HotpotQA's F1: yes/no/noanswer must match exactly."""
    pred, gold = normalize_answer(prediction), normalize_answer(answer)
    special = {"yes", "no", "noanswer"}
    if (pred in special or gold in special) and pred != gold:
        return 0.0
    pred_tokens, gold_tokens = pred.split(), gold.split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, golden: list[str]) -> float:
    return max(token_f1(prediction, g) for g in golden)


def accuracy(prediction: str, golden: list[str]) -> float:
    """A golden answer contained in the prediction (FlashRAG's 'acc')."""
    normalized = normalize_answer(prediction)
    return float(any(normalize_answer(g) in normalized for g in golden if normalize_answer(g)))


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def answer_metrics(prediction: str, question: dict, names=("em", "f1", "accuracy")) -> dict:
    """The named answer metrics of one prediction. STR-EM scores the question's
    readings (ASQA), or its golden answers as one reading; ROUGE-L its long
    answers (ASQA's annotators', ELI5's answer), or its golden answers."""
    golden = question["golden_answers"]
    scorers = {"em": lambda: exact_match(prediction, golden), "f1": lambda: f1_score(prediction, golden),
               "accuracy": lambda: accuracy(prediction, golden),
               "str_em": lambda: str_em(prediction, question.get("readings") or [golden]),
               "rouge_l": lambda: rouge_l(prediction, question.get("long_answers") or golden)}
    return {name: scorers[name]() for name in names}


def str_em(prediction: str, readings: list[list[str]]) -> float:
    """ASQA's STR-EM, as ALCE defines it and FlashRAG evaluates ASQA: the share of
    the question's readings (its disambiguated sub-questions) for which some short
    answer occurs, normalized, in the normalized prediction (a substring, as a
    long answer spells a short one inside a sentence). A short answer that
    normalizes to nothing ("The") would occur everywhere; it is not counted."""
    if not readings:
        raise ValueError("str_em needs at least one reading")
    text = normalize_answer(prediction)
    found = [any(a and a in text for a in map(normalize_answer, answers)) for answers in readings]
    return sum(found) / len(found)


def rouge_l(prediction: str, references: list[str]) -> float:
    """ROUGE-L F-measure (rouge-score, Porter stemming; its tokenizer lowercases
    and splits on anything not a letter or digit), the best over the references."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return max(scorer.score(reference, prediction)["rougeL"].fmeasure for reference in references)


def context_answer_recall(context: str, golden: list[str]) -> float:
    """1 when a normalized golden answer occurs in the normalized context, as a
    whole-word span: the refiner kept what the generator needs, however weak
    the generator is."""
    text = f" {normalize_answer(context)} "
    return float(any(f" {normalize_answer(g)} " in text for g in golden if normalize_answer(g)))


def gold_places(question: dict) -> set[tuple[str, str]]:
    """(doc id, most specific gold title) per supporting place of a question."""
    return {(d, title) for d in {p.get("doc_id") for p in question.get("supporting", [])} if d
            for title in gold_titles(question, d)}


def selection_metrics(question: dict, selections: dict[str, list[str]]) -> dict:
    """Recall of the gold sections among the retrieved documents, and the
    precision of everything global selection chose there (blank when it chose
    nothing, as precision is undefined)."""
    places = {(d, t) for d, t in gold_places(question) if d in selections}
    chosen = {(d, t) for d, titles in selections.items() for t in titles}
    row = {}
    if places:
        row["adr_recall"] = len(places & chosen) / len(places)
    if chosen and gold_places(question):
        row["adr_precision"] = len(places & chosen) / len(chosen)
    return row


def ranking_auc(positives: list[float], negatives: list[float]) -> float:
    """The chance that a positive scores above a negative, ties counting half
    (the Mann-Whitney form of the area under the ROC curve)."""
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def selection_auc(question: dict, scores: dict[str, dict[str, float]]) -> float | None:
    """How well a student's title scores rank the gold sections of the
    retrieved documents above their other sections, before any threshold: the
    threshold is chosen on a few held-out records, and moves ADR recall and
    precision with the training seed while the ranking stays. None where the
    candidates are all gold or none is."""
    candidates = {(d, title): score for d, titles in scores.items() for title, score in titles.items()}
    gold = gold_places(question) & candidates.keys()
    if not gold or len(gold) == len(candidates):
        return None
    return ranking_auc([candidates[c] for c in gold], [s for c, s in candidates.items() if c not in gold])


def alpha_error(refined: dict, reference_label: dict | None) -> float | None:
    """|P(Global) of the refiner - the teacher's|: how far the weight that
    query analysis gives global selection (LongRefiner's alpha, which the
    refiner uses as it is) lies from the one it was distilled from. Unlike the
    label, it has no threshold for a rounding or a seed to tip over."""
    target = (reference_label or {}).get("probabilities")
    if not target or "probabilities" not in refined:
        return None
    return abs(refined["probabilities"]["Global"] - target["Global"])


def refinement_metrics(question: dict, refined: dict, reference_label: dict | None) -> dict:
    """The refiner's own quality for one question: DQA label against the
    dataset's (or the teacher's) and its alpha against the teacher's, global
    selection against the gold sections, the refined context's answer recall
    and its compression."""
    row = {"context_answer_recall": context_answer_recall(refined["context"], question["golden_answers"]),
           "context_tokens": refined["context_tokens"], "retrieved_tokens": refined["retrieved_tokens"],
           "compression": (refined["context_tokens"] / refined["retrieved_tokens"]
                           if refined["retrieved_tokens"] else None)}
    if "label" in refined:
        gold_label = question.get("label") or (reference_label or {}).get("label")
        if gold_label:
            row["dqa_correct"] = float(refined["label"] == gold_label)
        if (error := alpha_error(refined, reference_label)) is not None:
            row["dqa_alpha_error"] = error
    if "selections" in refined:
        row.update(selection_metrics(question, refined["selections"]))
    if (auc := selection_auc(question, refined.get("selection_scores") or {})) is not None:
        row["adr_auc"] = auc
    return row


# per-question key -> summary column of its mean: the quality metrics (compared between methods)...
QUALITY_METRICS = {"em": "em", "f1": "f1", "accuracy": "accuracy", "str_em": "str_em", "rouge_l": "rouge_l",
                   "context_answer_recall": "context_answer_recall",
                   "dqa_correct": "dqa_accuracy", "dqa_alpha_error": "dqa_alpha_error",
                   "adr_recall": "adr_recall", "adr_precision": "adr_precision", "adr_auc": "adr_auc"}
# ... and every mean the summary reports
MEAN_COLUMNS = {**QUALITY_METRICS, "compression": "compression", "retrieved_tokens": "retrieved_tokens"}


def means(rows: list[dict]) -> dict:
    """Each column's mean over the questions that have it (None when none has)."""
    return {column: mean([r[key] for r in rows if r.get(key) is not None]) for key, column in MEAN_COLUMNS.items()}
