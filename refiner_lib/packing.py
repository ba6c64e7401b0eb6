"""Rows that carry several continuations of one prompt at once.

Scoring candidate answers (distillation's Local/Global labels and section
titles, global selection's titles at inference) needs each candidate's
log-likelihood after the same prompt. A row per candidate repeats the prompt
(in training) or copies its key/value cache (in inference). A packed row holds
the prompt once, then each candidate from where it leaves the row, as a branch:
a branch token attends to the row up to that point and to the branch before
it, at the position it would have in a row of its own, and nothing attends to
a branch. One forward pass then scores every candidate, with the numbers of
separate rows up to float rounding. transformers takes the 4D mask as given."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class PackedRow:
    ids: list[int]
    parents: list[int]  # per token, the token it follows (-1: the first)
    reads: list[list[int]] = field(default_factory=list)  # per candidate, the tokens whose states predict its own


def packed_row(row: list[int], start: int, choices: list[list[int]]) -> PackedRow:
    """`row`: a prompt's `start` tokens, then maybe an answer (a candidate that
    shares a beginning with it branches off where they differ). Each candidate's
    last token is only predicted, never fed in."""
    packed = PackedRow(list(row), list(range(-1, len(row) - 1)))
    answer = row[start:]
    for choice in choices:
        shared = 0
        while shared < min(len(choice), len(answer)) and choice[shared] == answer[shared]:
            shared += 1
        reads = list(range(start - 1, start + min(shared, len(choice) - 1)))  # in the row itself
        previous = start + shared - 1
        for token in choice[shared:-1]:
            packed.ids.append(token)
            packed.parents.append(previous)
            previous = len(packed.ids) - 1
            reads.append(previous)
        packed.reads.append(reads)
    return packed


def packed_inputs(rows: list[PackedRow], pad_id: int, attention_implementation: str,
                  prefix_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded token ids, position ids and the 4D attention mask of packed
    rows: a token attends to itself and to the tokens it follows; a padding
    token to itself only, which no real token reads. prefix_mask (rows x cached
    positions, 1 where a row's cached prefix has a token): every real token
    attends to its row's prefix too, and positions start after it. The mask is
    boolean (True attends), or additive for transformers' eager attention."""
    width = max(len(row.ids) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    allowed = torch.eye(width, dtype=torch.bool).repeat(len(rows), 1, 1)
    for b, row in enumerate(rows):
        input_ids[b, : len(row.ids)] = torch.tensor(row.ids)
        for i, parent in enumerate(row.parents):
            if parent >= 0:
                allowed[b, i] |= allowed[b, parent]
                positions[b, i] = positions[b, parent] + 1
    if prefix_mask is not None and prefix_mask.shape[1]:
        prefix = prefix_mask.bool().cpu()
        real = torch.arange(width) < torch.tensor([len(row.ids) for row in rows])[:, None]
        allowed = torch.cat([prefix[:, None, :] & real[:, :, None], allowed], dim=2)
        positions += prefix.sum(1, keepdim=True)
    mask = allowed.unsqueeze(1)
    if attention_implementation == "eager":
        mask = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min)
    return input_ids, positions, mask
