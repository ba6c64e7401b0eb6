"""Distillation objectives: the teacher's tempered distributions, and training
with them moves the student's own distribution toward the teacher's."""
import math

import pytest

from refiner_lib import distillation, prompts, stages, training
from refiner_lib.backend import HFBackend
from refiner_lib.errors import InputError
from refiner_lib.structure import node_titles
from refiner_lib.settings import LoraSettings, Objective, TrainingOutputs, TrainingSettings
from test_models_training import LORA, SCHEDULE

TEACHER = {"Local": 0.8, "Global": 0.2}


def test_teacher_distributions_are_tempered():
    plain = distillation.soft_target("query_analysis", {"probabilities": TEACHER}, 1.0, "x")
    assert plain["distribution"] == pytest.approx([0.8, 0.2])
    hot = distillation.soft_target("query_analysis", {"probabilities": TEACHER}, 4.0, "x")["distribution"]
    assert hot == pytest.approx([0.8 ** 0.25 / (0.8 ** 0.25 + 0.2 ** 0.25), 0.2 ** 0.25 / (0.8 ** 0.25 + 0.2 ** 0.25)])
    one_hot = distillation.soft_target("query_analysis", {"probabilities": {"Local": 1.0, "Global": 0.0}}, 1.0, "x")
    assert one_hot["distribution"][0] > 0.999  # an oracle label: plain cross-entropy, no log(0)
    ranked = distillation.soft_target("global_selection", {"scores": {"a": 2.0, "b": 0.0, "c": 0.0}}, 1.0, "x")
    assert ranked["choices"] == ["['a']", "['b']", "['c']"]
    assert ranked["distribution"] == pytest.approx([math.exp(2) / (math.exp(2) + 2), 1 / (math.exp(2) + 2),
                                                    1 / (math.exp(2) + 2)])
    assert distillation.soft_target("global_selection", {"scores": {"only": 1.0}}, 1.0, "x") is None


def test_bad_teacher_scores_name_the_row():
    with pytest.raises(InputError, match="labels.jsonl:3: field 'probabilities'"):
        distillation.soft_target("query_analysis", {"label": "Local"}, 1.0, "labels.jsonl:3")
    with pytest.raises(InputError, match="not 'doc_structuring'"):
        distillation.soft_target("doc_structuring", {}, 1.0, "labels.jsonl:1")


def kl(teacher: dict, student: dict) -> float:
    return sum(p * math.log(p / student[k]) for k, p in teacher.items())


def test_kd_moves_the_dqa_student_toward_the_teachers_probabilities(tiny_model, tmp_path):
    questions = ["Who founded the Varn Guild?", "Why do rivers flood?", "When was Oskel born?", "How do tides work?"]
    records = []
    for question in questions:
        record = prompts.query_analysis_record(question, "Local")
        record[training.SOFT_TARGET] = distillation.soft_target("query_analysis", {"probabilities": TEACHER}, 1.0, "x")
        records.append(record)
    schedule = dict(SCHEDULE, epochs=8, max_steps=16, learning_rate=5e-3)
    objective = {"kind": "kd", "temperature": 1.0, "weight": 1.0}  # the distillation term alone
    settings = TrainingSettings.from_dict({"lora": LORA, "schedule": schedule, "quantization": None, "seed": 3,
                                           "objective": objective})
    training.train_adapter(tiny_model, records, settings, TrainingOutputs(tmp_path / "kd", tmp_path / "kd.csv"))
    asked = [{"id": str(i), "question": q} for i, q in enumerate(questions)]
    before = stages.model_query_analysis(HFBackend(tiny_model), asked)
    after = stages.model_query_analysis(HFBackend(tiny_model, adapters={"query_analysis": str(tmp_path / "kd")}), asked)
    gap_before = sum(kl(TEACHER, r["probabilities"]) for r in before)
    gap_after = sum(kl(TEACHER, r["probabilities"]) for r in after)
    assert gap_after < gap_before / 2, (gap_before, gap_after)


def test_calibration_recovers_the_alpha_a_student_was_distilled_towards():
    """A student that ranks questions right but gives every one a P(Global) off
    by a scale and a shift: Platt scaling on held-out soft targets undoes both."""
    true_log_odds = [-3.0, -1.5, -0.8, 0.0, 0.4, 1.1, 2.5, -2.2]
    targets = [stages.sigmoid(z) for z in true_log_odds]  # the teacher's P(Global)
    student = [0.5 * z - 0.7 for z in true_log_odds]  # under-confident, and leaning Local
    fitted = stages.fit_alpha_calibration(student, targets)
    assert fitted["scale"] == pytest.approx(2.0, rel=0.01) and fitted["shift"] == pytest.approx(1.4, rel=0.01)
    assert fitted["records"] == 8 and fitted["criterion"] == "soft_cross_entropy"
    for z, target in zip(student, targets):
        p_global = stages.sigmoid(z)
        calibrated = stages.calibrated({"Local": 1 - p_global, "Global": p_global}, fitted)
        assert calibrated["Global"] == pytest.approx(target, abs=0.01) and sum(calibrated.values()) == pytest.approx(1)


def test_calibration_on_separable_hard_labels_stays_finite():
    fitted = stages.fit_alpha_calibration([-2.0, -1.0, 1.0, 2.0], [0.0, 0.0, 1.0, 1.0])
    assert math.isfinite(fitted["scale"]) and fitted["scale"] > 1 and math.isfinite(fitted["shift"])
    assert stages.calibrated({"Local": 0.3, "Global": 0.7}, None) == {"Local": 0.3, "Global": 0.7}
    with pytest.raises(InputError, match="no held-out records"):
        stages.fit_alpha_calibration([], [])


def test_a_calibrated_student_labels_by_its_calibrated_probabilities(tiny_model):
    """The label is the likelier of the calibrated probabilities: a calibration
    that maps every question to P(Global) = 0.3 makes each Local."""
    asked = [{"id": "a", "question": "Who founded the Varn Guild?"}, {"id": "b", "question": "Why do rivers flood?"}]
    backend = HFBackend(tiny_model)
    to_point_three = {"scale": 0.0, "shift": math.log(0.3 / 0.7)}
    for row in stages.model_query_analysis(backend, asked, to_point_three):
        assert row["probabilities"]["Global"] == pytest.approx(0.3) and row["label"] == "Local"
    identity = stages.model_query_analysis(backend, asked, {"scale": 1.0, "shift": 0.0})
    for raw, same in zip(stages.model_query_analysis(backend, asked), identity):
        assert same["probabilities"]["Global"] == pytest.approx(raw["probabilities"]["Global"], abs=1e-12)


def test_listnet_lowers_the_adr_ranking_loss(tiny_model, tmp_path, synthetic_data):
    questions, corpus, trees = synthetic_data
    tree = trees[0]
    titles = node_titles(tree)[:4]
    scores = {title: (3.0 if i == 1 else 0.0) for i, title in enumerate(titles)}
    record = prompts.global_selection_record(questions[0]["question"], tree, [titles[1]])
    record[training.SOFT_TARGET] = distillation.soft_target("global_selection", {"scores": scores}, 1.0, "x")
    schedule = dict(SCHEDULE, epochs=16, max_steps=16, learning_rate=2e-2, batch_size=1, max_seq_len=512)
    objective = {"kind": "kd", "temperature": 1.0, "weight": 1.0}
    every_linear = dict(LORA, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                              "down_proj"])
    settings = TrainingSettings.from_dict({"lora": every_linear, "schedule": schedule, "quantization": None, "seed": 3,
                                           "objective": objective})
    training.train_adapter(tiny_model, [record], settings, TrainingOutputs(tmp_path / "ln", tmp_path / "ln.csv"))
    losses = [float(line.split(",")[2]) for line in (tmp_path / "ln.csv").read_text().splitlines()[1:]]
    target = record[training.SOFT_TARGET]["distribution"]
    entropy = -sum(p * math.log(p) for p in target)  # the cross-entropy's floor: KL = loss - entropy
    assert losses[-1] - entropy < (losses[0] - entropy) / 2, (losses, entropy)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_the_one_pass_kd_loss_equals_separate_passes(tiny_model, synthetic_data, attention):
    """training_loss packs each record's candidates after its answer row in one
    pass (distillation.PackedRow); the loss must equal the answer loss and each
    candidate scored in a row of its own, prompt and candidate: labels that
    share their first token with the answer, and section titles of several
    tokens, one of them the answer's own."""
    import torch

    from refiner_lib import models

    tokenizer = models.load_tokenizer(tiny_model)
    records = []
    for question, label in [("Who founded the Varn Guild?", "Local"), ("Why do rivers flood in spring?", "Global")]:
        record = prompts.query_analysis_record(question, label)
        record[training.SOFT_TARGET] = distillation.soft_target("query_analysis", {"probabilities": TEACHER}, 2.0, "x")
        records.append(record)
    questions, _, trees = synthetic_data
    titles = node_titles(trees[0])[:4]
    record = prompts.global_selection_record(questions[0]["question"], trees[0], [titles[1]])
    record[training.SOFT_TARGET] = distillation.soft_target(
        "global_selection", {"scores": {t: float(i) for i, t in enumerate(titles)}}, 2.0, "x")
    records.append(record)
    batch = training.collate(training.encode_all(tokenizer, records, 512), tokenizer.pad_token_id)
    model = training.prepare_model(tiny_model, LoraSettings(**LORA), None).eval()
    objective = Objective("kd", temperature=2.0, weight=0.5)
    causal_lm = model.get_base_model()
    causal_lm.set_attn_implementation(attention)  # a 4D mask is boolean for one, additive for the other

    def alone(prompt: torch.Tensor, choice: list[int], reduce: str) -> torch.Tensor:
        ids = torch.cat([prompt, torch.tensor(choice)]).unsqueeze(0)
        log_probs = torch.log_softmax(causal_lm(input_ids=ids).logits[0, len(prompt) - 1:-1].float(), -1)
        per_token = log_probs.gather(-1, torch.tensor(choice).unsqueeze(-1))
        return per_token.mean() if reduce == "mean" else per_token.sum()

    with torch.no_grad():
        together = training.training_loss(model, batch, objective)
        terms = []
        for row, target in enumerate(batch["soft_targets"]):
            prompt = batch["input_ids"][row][: target["prompt_length"]]
            scores = torch.stack([alone(prompt, choice, target["reduce"]) for choice in target["choices"]])
            terms.append(distillation.loss(scores, target, 2.0))
        apart = 0.5 * training.answer_loss(model, batch) + 0.5 * 4.0 * torch.stack(terms).mean()
    assert together.item() == pytest.approx(apart.item(), rel=1e-5)


def test_a_packed_row_reads_each_candidate_where_it_leaves_the_answer():
    target = {"prompt_length": 3, "choices": [[7, 8, 9], [7, 5, 6], [4]]}
    row = distillation.packed_row([1, 2, 3, 7, 8, 9, 0], target)  # the answer is the first choice, then an end token
    assert row.ids == [1, 2, 3, 7, 8, 9, 0, 5]  # the second leaves after 7; no last token is ever fed
    assert row.parents == [-1, 0, 1, 2, 3, 4, 5, 3]
    assert row.reads == [[2, 3, 4], [2, 3, 7], [2]]
