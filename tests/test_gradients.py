"""Every LoRA weight keeps getting a gradient through training with validation
passes, on a full-precision, a 4-bit NF4 (double quant) and an 8-bit base.

Regression: on AVX512-BF16 CPUs bitsandbytes repacks a Linear4bit's weight for
inference when it runs in eval mode, and train() does not undo it; the backward
passes after the first validation then went through gemv_4bit (no autograd
kernel) and some LoRA weights got no gradient at all."""
import math

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from refiner_lib import backend, models, training
from refiner_lib.settings import LoraSettings, Quantization, TrainingOutputs, TrainingSettings

# emitted by torch's autograd fallback when backward goes through a kernel without a derivative
pytestmark = pytest.mark.filterwarnings("error:.*an autograd kernel was not registered:UserWarning")

LORA = {"r": 8, "alpha": 16, "dropout": 0.05,  # config.yaml's, with dropout on (a user may set it)
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}
# Without o_proj and down_proj, every adapter reaches the loss only through a frozen
# base layer's input gradient: a base layer that drops it leaves adapters without any
# (with all seven, LoRA-to-LoRA paths would still give them a wrong, non-zero one).
LORA_BEHIND_BASE = {**LORA, "target_modules": ["q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"]}
NF4 = Quantization(bits=4, quant_type="nf4", double_quant=True, compute_dtype="float32")
# bitsandbytes trains on an 8-bit base on the CPU (MatMul8bitFp: dequantize, then an fp32 matmul)
VARIANTS = {"lora": None, "qlora": NF4, "int8": Quantization(bits=8)}
STEPS = 3  # a validation pass after steps 1 and 2


@pytest.fixture(autouse=True)
def one_thread():
    """On 2 shared cores, torch's 2 OpenMP threads slow down ~10x whenever another
    process is busy; one thread keeps these steps at about a second."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def records(count: int) -> list[dict]:
    questions = ["Who founded Varn?", "Why do rivers flood?", "When was Oskel born?", "How do tides work?"]
    return [{"instruction": "Classify.", "input": questions[i % 4], "output": ["[Local]", "[Global]"][i % 2]}
            for i in range(count)]


@pytest.fixture(scope="module")
def smollm2_shaped(tiny_model, tmp_path_factory):
    """SmolLM2-135M's architecture, randomly initialized, with the tiny tokenizer
    (so a 1.5k vocabulary instead of 49152; every layer keeps its real shape)."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    tokenizer = models.load_tokenizer(tiny_model.parent / "tokenizer")
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
        num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True, rope_theta=100000,
        max_position_embeddings=8192, rms_norm_eps=1e-5,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("smollm2-135m-shape") / "model"
    AutoModelForCausalLM.from_config(config).save_pretrained(folder, safe_serialization=True)
    models.save_tokenizer(tokenizer, folder)
    return folder


@pytest.fixture(params=["tiny_qwen2", "smollm2_135m_shape"])
def base_dir(request):
    return request.getfixturevalue({"tiny_qwen2": "tiny_model", "smollm2_135m_shape": "smollm2_shaped"}[request.param])


def rearm_cpu_packing(model) -> None:
    """Give bitsandbytes back its default on this CPU (load_causal_lm turns the
    packed inference layout off for speed), so that validation_loss itself is
    what keeps the 4-bit layers trainable."""
    from bitsandbytes.functional import has_avx512bf16

    for layer in backend.linear4bit_modules(model):
        layer.support_avx512bf16_for_cpu = has_avx512bf16()


def without_gradient(model) -> list[str]:
    """Trainable parameters whose gradient is missing, non-finite or all zero."""
    return [name for name, p in model.named_parameters()
            if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.any())]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_lora_weight_gets_a_gradient_after_validation(base_dir, variant):
    torch.manual_seed(0)
    tokenizer = models.load_tokenizer(base_dir)
    encoded = training.encode_all(tokenizer, records(3), max_length=64)
    batch = training.collate(encoded[:2], tokenizer.pad_token_id)
    held_out = [training.collate(encoded[2:], tokenizer.pad_token_id)]
    model = training.prepare_model(base_dir, LoraSettings(**LORA_BEHIND_BASE), VARIANTS[variant])
    rearm_cpu_packing(model)
    model.train()
    with torch.no_grad():  # LoRA zero-inits B, which zeroes A's gradient until the first update
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.01)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    for step in range(1, STEPS + 1):
        loss = training.training_loss(model, batch, None)
        loss.backward()
        assert math.isfinite(loss.item())
        missing = without_gradient(model)
        assert not missing, (f"step {step}, after {step - 1} validation passes: {len(missing)} of {len(trainable)} "
                             f"trainable parameters have no finite non-zero gradient, e.g. {missing[:3]}")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step < STEPS:
            first = training.validation_loss(model, held_out)
            assert math.isfinite(first)
            assert training.validation_loss(model, held_out) == first  # dropout is off while validating
            assert model.training


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_train_adapter_keeps_every_gradient_through_validation(tiny_model, tmp_path, variant):
    """The real loop (validation after every step), seen by torch's optimizer step hook."""
    trainable_grads = []

    def record(optimizer, args, kwargs):
        trainable_grads.append([p.grad for group in optimizer.param_groups for p in group["params"]])

    hook = register_optimizer_step_pre_hook(record)
    try:
        schedule = {"epochs": 2, "max_steps": STEPS, "batch_size": 2, "learning_rate": 1e-3, "warmup_steps": 1,
                    "weight_decay": 0.0, "max_grad_norm": 1.0, "max_seq_len": 64}
        settings = TrainingSettings.from_dict({"lora": LORA, "schedule": schedule, "quantization": VARIANTS[variant],
                                               "seed": 0, "validation": {"every_steps": 1}})
        metrics = training.train_adapter(tiny_model, records(4), settings,
                                         TrainingOutputs(tmp_path / "adapter", tmp_path / "loss.csv"),
                                         validation_records=records(2))
    finally:
        hook.remove()
    assert metrics["steps"] == STEPS and math.isfinite(metrics["final_validation_loss"])
    assert len(trainable_grads) == STEPS
    for step, grads in enumerate(trainable_grads, start=1):
        assert all(g is not None and torch.isfinite(g).all() for g in grads), f"step {step}: missing gradients"
        if step > 1:  # at step 1, LoRA's zero-initialized B leaves A's gradient exactly zero
            assert all(g.any() for g in grads), f"step {step}: all-zero gradients"
