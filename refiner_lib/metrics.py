"""Answer metrics with SQuAD/HotpotQA normalization, max over golden answers."""
from __future__ import annotations

import re
import string
from collections import Counter

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
