"""Knowledge distillation from the teacher's scores, beside supervised
fine-tuning on its outputs.

A soft target is a list of candidate answers with the teacher's distribution
over them:
  query analysis    the answers `[Local]` / `[Global]`; the teacher's
                    probabilities, tempered: softmax(log p / T)
  global selection  one answer per section, `['<title>']`; ListNet's top-one
                    distribution softmax(score / T) over the teacher's
                    per-section scores
The student's distribution is softmax(log-likelihood / T) over the same
candidates (summed token log-probabilities for the two labels, as at inference;
the mean per token for section titles, whose lengths differ). The loss is the
cross-entropy between the two, i.e. the KL divergence up to the teacher's
entropy: the Hinton et al. KD term for DQA, the ListNet loss for ADR.
"""
from __future__ import annotations

import math

import torch

from . import packing
from .errors import InputError
from .prompts import QUERY_LABELS

KD_STAGES = ("query_analysis", "global_selection")
PROBABILITY_FLOOR = 1e-6  # a one-hot oracle label gives log 0 otherwise


def soft_target(stage: str, label: dict, temperature: float, where: str) -> dict | None:
    """The teacher's distribution for one training record, from its labels row."""
    if stage == "query_analysis":
        probabilities = label.get("probabilities")
        if not isinstance(probabilities, dict) or set(probabilities) != set(QUERY_LABELS):
            raise InputError(f"{where}: field 'probabilities' must map {list(QUERY_LABELS)} to numbers")
        choices = [f"[{name}]" for name in QUERY_LABELS]
        logits = [math.log(max(float(probabilities[name]), PROBABILITY_FLOOR)) for name in QUERY_LABELS]
        return {"choices": choices, "distribution": softmax(logits, temperature), "reduce": "sum"}
    if stage == "global_selection":
        scores = label.get("scores")
        if not isinstance(scores, dict):
            raise InputError(f"{where}: field 'scores' must map section titles to numbers")
        if len(scores) < 2:
            return None  # nothing to rank
        titles = list(scores)
        return {"choices": [repr([title]) for title in titles],
                "distribution": softmax([float(scores[t]) for t in titles], temperature), "reduce": "mean"}
    raise InputError(f"{where}: distillation is defined for {list(KD_STAGES)}, not '{stage}'")


def softmax(values: list[float], temperature: float) -> list[float]:
    top = max(values)
    weights = [math.exp((v - top) / temperature) for v in values]
    return [w / sum(weights) for w in weights]


def encode_target(tokenizer, labels: list[int], target: dict) -> dict:
    """Token ids of the candidates, and where the prompt ends in the record's ids."""
    prompt_length = next((i for i, label in enumerate(labels) if label != -100), len(labels))
    return {"prompt_length": prompt_length, "reduce": target["reduce"],
            "choices": [tokenizer(c, add_special_tokens=False)["input_ids"] for c in target["choices"]],
            "distribution": torch.tensor(target["distribution"])}


def packed_row(answer_row: list[int], target: dict | None) -> packing.PackedRow:
    """The record's answer row with its candidates packed after it (packing.py)."""
    if not target:
        return packing.packed_row(answer_row, len(answer_row), [])
    return packing.packed_row(answer_row, target["prompt_length"], target["choices"])


def candidate_scores(causal_lm, hidden: torch.Tensor, target: dict, reads: list[list[int]]) -> torch.Tensor:
    """Each candidate's log-likelihood (summed or mean per token) from one packed
    row's decoder states (`reads`: PackedRow.reads), with the output layer on
    the states that predict the candidate's tokens only."""
    scores = []
    for ids, positions in zip(target["choices"], reads):
        logits = causal_lm.get_output_embeddings()(hidden[positions]).float()
        chosen = torch.tensor(ids, device=logits.device).unsqueeze(-1)
        token_log_probs = torch.log_softmax(logits, -1).gather(-1, chosen).squeeze(-1)
        scores.append(token_log_probs.mean() if target["reduce"] == "mean" else token_log_probs.sum())
    return torch.stack(scores)


def loss(candidate_log_likelihoods: torch.Tensor, target: dict, temperature: float) -> torch.Tensor:
    """Cross-entropy of the student's tempered distribution to the teacher's."""
    student = torch.log_softmax(candidate_log_likelihoods / temperature, dim=0)
    return -(target["distribution"].to(student.device) * student).sum()
