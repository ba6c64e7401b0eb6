"""The CPU attention that takes the eager path on short queries computes what
transformers' eager and SDPA attention compute, with padding, a cache and
grouped key/value heads."""
import pytest
import torch

from refiner_lib import attention
from refiner_lib.backend import load_causal_lm
from refiner_lib.models import load_tokenizer

PROMPTS = ["Who founded the Kelvin Works?",
           "The Kelvin Works is a foundry on the river. It was founded in 1802 by Ada Kelvin, whose family "
           "kept a mill in the northern valleys. Where did she grow up, and when was the foundry founded?"]


@pytest.fixture(scope="module")
def grouped_model(tiny_model, tmp_path_factory):
    """The tiny model's shape with 4 query heads over 2 key/value heads."""
    from refiner_lib.models import build_tiny_qwen2

    return build_tiny_qwen2(tmp_path_factory.mktemp("grouped") / "model", tiny_model, hidden_size=128, heads=4,
                            key_value_heads=2)


def models(folder):
    return {name: load_causal_lm(folder, attn_implementation=name).eval()
            for name in ("eager", "sdpa", attention.register())}


def left_padded(tokenizer, texts):
    tokenizer.padding_side = "left"
    return tokenizer(texts, return_tensors="pt", padding=True)


def test_the_model_groups_key_value_heads(grouped_model):
    config = load_causal_lm(grouped_model).config
    assert config.num_attention_heads > config.num_key_value_heads  # the repeat of key/value heads is exercised


@pytest.mark.parametrize("texts", [PROMPTS[:1], PROMPTS, [PROMPTS[1]] * 2], ids=["short", "padded", "long"])
def test_a_forward_pass_equals_eager_and_sdpa(grouped_model, texts):
    tokenizer = load_tokenizer(grouped_model)
    batch = left_padded(tokenizer, texts)
    assert batch["input_ids"].shape[1] > attention.SHORT_QUERY_TOKENS or texts == PROMPTS[:1]
    with torch.no_grad():
        logits = {name: model(**batch).logits for name, model in models(grouped_model).items()}
    real = batch["attention_mask"].bool()
    for name in ("eager", "sdpa"):
        torch.testing.assert_close(logits[attention.NAME][real], logits[name][real], atol=1e-5, rtol=1e-5)


def test_decoding_and_short_continuations_after_a_cache_equal_eager(grouped_model):
    """Greedy decoding of a left-padded batch (one-token queries over the cache)
    and a 5-token continuation scored after the cached prompt."""
    tokenizer = load_tokenizer(grouped_model)
    batch = left_padded(tokenizer, PROMPTS)
    outputs = {}
    for name, model in models(grouped_model).items():
        with torch.no_grad():
            generated = model.generate(**batch, max_new_tokens=8, min_new_tokens=8, do_sample=False,
                                       pad_token_id=tokenizer.pad_token_id, output_logits=True,
                                       return_dict_in_generate=True)
            prompt = model(**batch, use_cache=True)
            continuation = torch.tensor([[5, 6, 7, 8, 9]] * len(PROMPTS))
            mask = torch.cat([batch["attention_mask"], torch.ones_like(continuation)], dim=1)
            positions = batch["attention_mask"].sum(1, keepdim=True) + torch.arange(5)
            scored = model(input_ids=continuation, attention_mask=mask, position_ids=positions,
                           past_key_values=prompt.past_key_values).logits
        outputs[name] = (generated.sequences, torch.stack(generated.logits), scored)
    ours = outputs[attention.NAME]
    for name in ("eager", "sdpa"):
        assert torch.equal(ours[0], outputs[name][0])
        torch.testing.assert_close(ours[1], outputs[name][1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours[2], outputs[name][2], atol=1e-5, rtol=1e-5)


def test_a_gpu_keeps_transformers_default():
    assert attention.implementation(cuda=True) == {}
    assert attention.implementation(cuda=False) == {"attn_implementation": attention.NAME}


def test_an_inference_model_goes_where_the_gpus_are(tiny_model):
    """The choice of device, made on a CPU: "auto" (accelerate spreads the model
    over the GPUs) when CUDA is there, else the CPU; inputs follow the model."""
    from refiner_lib import launch
    from refiner_lib.backend import HFBackend

    assert launch.inference_device_map(cuda=True) == "auto"
    assert launch.inference_device_map(cuda=False) is None
    backend = HFBackend(tiny_model)
    assert backend.device == next(backend.model.parameters()).device
    _, input_ids, mask, _ = backend.batch([([], [5, 6, 7])])
    assert input_ids.device == mask.device == backend.device
