"""Prompt prefixes that recur across calls (the generator's instruction and
worked examples, a document before its question) keep their key/value cache:
every score and answer stays what the whole prompt computes alone."""
import pytest
import torch

from refiner_lib import stages
from refiner_lib.backend import HFBackend
from refiner_lib.inference import Prompt

DOCUMENTS = ["The Kelvin Works\nThe Kelvin Works is a foundry on the river. It was founded in 1802 by Ada Kelvin.",
             "Early life\nMira Tolv grew up in the northern valleys, where her family kept a mill."]
QUESTIONS = ["Who founded the Kelvin Works?", "Where did Mira Tolv grow up?", "When was the foundry founded?"]


def document_prompt(backend, document: str, question: str) -> Prompt:
    text = backend.prompt([{"role": "user", "content": f"{document}\n**Question**:{question}\nOutput:"}])
    return Prompt.shared_before(text, "\n**Question**:")


def full_pass_score(backend, prompt: str, continuation: str) -> float:
    tokenizer = backend.tokenizer
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = backend.model(input_ids=torch.tensor([prompt_ids + ids])).logits[0].float()
    log_probs = torch.log_softmax(logits, -1)
    return sum(float(log_probs[len(prompt_ids) - 1 + i, token]) for i, token in enumerate(ids))


def test_scores_after_cached_prefixes_equal_full_forward_passes(tiny_model):
    """One batch mixing two prompts on one document, one on another and a plain
    prompt, scored twice (the second time from the kept caches): each score
    equals a full forward pass of that prompt and continuation alone."""
    backend = HFBackend(tiny_model)
    prompts = [document_prompt(backend, DOCUMENTS[0], QUESTIONS[0]), document_prompt(backend, DOCUMENTS[0], QUESTIONS[2]),
               document_prompt(backend, DOCUMENTS[1], QUESTIONS[1]), backend.prompt([{"role": "user", "content": "Hi?"}])]
    assert all(backend.split(p, keep_end=True)[0] for p in prompts[:3])  # the cut falls between tokens
    continuations = [["[]", stages.title_candidate("The Kelvin Works")], ["[]", "['abstract"],
                     [stages.title_candidate("Early life"), "[]", "['abstract"], ["[]"]]
    for _ in range(2):
        scores = backend.continuation_log_likelihoods(prompts, continuations)
        for prompt, texts, row in zip(prompts, continuations, scores):
            for text, score in zip(texts, row):
                assert score == pytest.approx(full_pass_score(backend, prompt, text), abs=1e-4), text
    assert len(backend.prefixes.entries) == 2  # one per document


def test_answers_after_a_cached_instruction_equal_uncached_ones(tiny_model):
    backend = HFBackend(tiny_model, batch_size=2)
    instruction = [{"role": "system", "content": "Answer from the documents."}]
    texts = [backend.prompt(instruction + [{"role": "user", "content": f"Documents:\n{d}\n\nQuestion: {q}"}])
             for d, q in zip(DOCUMENTS + DOCUMENTS[:1], QUESTIONS)]
    plain = backend.generate_counted(texts, 6)
    cached = backend.generate_counted([Prompt.shared_through(t, "Documents:\n") for t in texts], 6)
    assert cached == plain  # the same answers and the same token counts (FLOPs do not depend on caching)
    assert len(backend.prefixes.entries) == 1


def test_a_cut_inside_a_token_is_not_cached(tiny_model):
    """A shared part that ends inside one of the prompt's tokens (as one ending
    after "\n\n" would with SmolLM2's tokenizer, which reads "\n\n**" as "\n",
    "\n", "**") does not tokenize into a prefix of the prompt: it runs whole."""
    backend = HFBackend(tiny_model)
    text = backend.prompt([{"role": "user", "content": f"{DOCUMENTS[0]}\n**Question**:{QUESTIONS[0]}"}])
    encoded = backend.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    start, end = next((a, b) for a, b in encoded["offset_mapping"][5:] if b - a >= 3)
    head, tail = backend.split(Prompt(text, shared=start + 1), keep_end=True)
    assert head == [] and tail == encoded["input_ids"]
    assert backend.split(Prompt(text, shared=start), keep_end=True)[0]  # a cut between tokens is kept


def test_forgotten_and_evicted_prefixes(tiny_model):
    backend = HFBackend(tiny_model)
    prompts = [document_prompt(backend, d, QUESTIONS[0]) for d in DOCUMENTS]
    backend.choice_probabilities(prompts, ["[]", "['abstract"])
    assert len(backend.prefixes.entries) == 2
    backend.forget_prefixes()
    assert not backend.prefixes.entries
    one = sum(t.numel() * t.element_size() for layer in backend.prefix_state([backend.split(prompts[0], True)[0]])[0].layers
              for t in (layer.keys, layer.values))
    backend.prefixes.max_bytes = one  # room for one document: the least recently used goes
    backend.choice_probabilities(prompts, ["[]", "['abstract"])
    assert list(backend.prefixes.entries) == [(None, tuple(backend.split(prompts[1], True)[0]))]
