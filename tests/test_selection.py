"""A global-selection student selects by scoring every title of a document, with
a threshold chosen on its held-out records; the scores reuse the prompt's
key/value cache."""
import pytest

from refiner_lib import stages
from refiner_lib.backend import HFBackend

from test_prefix_cache import full_pass_score


def test_cached_batched_continuation_scores_equal_full_forward_passes(tiny_model):
    """Prompts of different lengths scored in one left-padded batch, their
    continuations on the shared cache: each score equals a full forward pass
    of that prompt and continuation alone."""
    backend = HFBackend(tiny_model)
    prompts = [backend.prompt([{"role": "user", "content": text}]) for text in
               ["Which section tells where the Kelvin Works is based?", "Early life?",
                "Which part of this long article on the river trade of the northern valleys names its founder?"]]
    continuations = [["[]", stages.title_candidate("Operations"), stages.title_candidate("Early life"), "['abstract"],
                     ["[]", stages.title_candidate("Career")],
                     [stages.title_candidate("History of the guild"), "[]", "['abstract"]]
    cached = backend.continuation_log_likelihoods(prompts, continuations)
    for prompt, texts, scores in zip(prompts, continuations, cached):
        for text, score in zip(texts, scores):
            assert score == pytest.approx(full_pass_score(backend, prompt, text), abs=1e-4), text


def test_continuations_of_any_length_score_in_one_pass(tiny_model):
    """Continuations of one token are scored from their prompt's last state (their
    only token is predicted, never read), alone in a batch or beside longer ones,
    and a batch of prompts with all their continuations takes one forward pass."""
    backend = HFBackend(tiny_model)
    prompt = backend.prompt([{"role": "user", "content": "Which section tells where the Kelvin Works is based?"}])
    vocabulary = backend.tokenizer.get_vocab()
    one_token = [t for t in ("[", "]", "the", "a") if t in vocabulary][:2]
    assert len(one_token) == 2 and all(len(backend.tokenizer(t, add_special_tokens=False)["input_ids"]) == 1
                                       for t in one_token)
    longer = [one_token[0], stages.title_candidate("Early life")]
    alone, mixed = backend.continuation_log_likelihoods([prompt, prompt], [one_token, longer])
    assert alone[0] == pytest.approx(mixed[0], abs=1e-5)  # the same first token, whether or not a second pass runs
    for text, score in zip(longer, mixed):
        assert score == pytest.approx(full_pass_score(backend, prompt, text), abs=1e-4), text
    decoder, calls = backend.model.get_decoder(), []
    hook = decoder.register_forward_hook(lambda module, args, output: calls.append(module))
    try:
        backend.continuation_log_likelihoods([prompt, prompt], [one_token, longer])
    finally:
        hook.remove()
    assert len(calls) == 1  # prompts and continuations of every length: one forward pass


def test_title_candidates_follow_the_teachers_answer_format():
    assert stages.title_candidate("Early life") == "['Early life"
    assert repr(["Early life", "Career"]).startswith(stages.title_candidate("Early life"))
    assert repr(["O'Neil's work"]).startswith(stages.title_candidate("O'Neil's work"))


def test_the_threshold_reproduces_the_teacher_on_held_out_records():
    probabilities = [{"Career": 0.7, "Legacy": 0.1}, {"Career": 0.2, "Legacy": 0.15}, {"History": 0.45, "Culture": 0.4}]
    gold = [["Career"], [], ["History", "Culture"]]
    best = stages.best_threshold(probabilities, gold)
    assert 0.2 < best["threshold"] <= 0.4 and best["validation_f1"] == pytest.approx(1.0)
    assert stages.select_titles(probabilities[2], best["threshold"]) == ["History", "Culture"]


def test_nothing_is_selected_when_the_teacher_never_selects():
    best = stages.best_threshold([{"A": 0.9, "B": 0.05}], [[]])
    assert best["threshold"] > 0.9 and stages.select_titles({"A": 0.9, "B": 0.05}, best["threshold"]) == []


def test_a_student_that_ranks_gold_below_some_distractors_still_selects():
    """Four distractor documents (nothing to select) whose best title outscores the
    gold titles of two answer documents: pooled F1 keeps the gold titles
    (recall 1, precision 1/3) where a mean of per-record F1 would select nothing."""
    probabilities = [{"Trade": 0.5}] * 4 + [{"Career": 0.4, "Legacy": 0.05}] * 2
    gold = [[]] * 4 + [["Career"]] * 2
    best = stages.best_threshold(probabilities, gold)
    assert best["threshold"] == 0.4 and best["validation_f1"] == pytest.approx(0.5)
