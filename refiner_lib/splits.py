"""Seeded splits: a dataset's questions into train and eval parts, and a
stage's training records into the records trained on and those held out."""
from __future__ import annotations

import random

from .errors import InputError


def split_part(questions: list[dict], part: str, num_train: int, num_eval: int, seed: int) -> list[dict]:
    """The train or eval part of a seeded permutation of the questions: eval its
    first num_eval, train its last num_train, never overlapping. Questions that
    carry a `pool` (a dataset with its own eval questions) are drawn from their
    part's pool alone."""
    if any("pool" in q for q in questions):
        pool = [q for q in questions if q.get("pool") == part]
        size = num_eval if part == "eval" else num_train
        if size > len(pool):
            raise InputError(f"split asks for {size} {part} questions, the {part} pool has {len(pool)}")
        order = list(range(len(pool)))
        random.Random(seed).shuffle(order)
        return [pool[i] for i in order[:size]]
    if num_train + num_eval > len(questions):
        raise InputError(f"split asks for {num_train} train + {num_eval} eval questions, the data has {len(questions)}")
    order = list(range(len(questions)))
    random.Random(seed).shuffle(order)
    chosen = order[:num_eval] if part == "eval" else order[len(order) - num_train:]
    return [questions[i] for i in chosen]


def split_validation(records: list[dict], size: int, seed: int) -> tuple[list[dict], list[dict]]:
    """A fixed held-out part of a stage's training records (never trained on)."""
    if size <= 0:
        return records, []
    if size >= len(records):
        raise InputError(f"training: validation size {size} leaves no training records (have {len(records)})")
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    held = set(order[:size])
    return [r for i, r in enumerate(records) if i not in held], [r for i, r in enumerate(records) if i in held]
