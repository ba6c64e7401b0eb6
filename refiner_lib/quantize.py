"""Post-training quantization: merge a LoRA adapter into its base, quantize the
merged model with bitsandbytes (8-bit or 4-bit), save it, and check it reloads."""
from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path

from .backend import load_causal_lm
from .jsonl import write_json
from .measure import folder_bytes
from .models import atomic_dir, load_tokenizer, save_tokenizer
from .settings import Quantization


def merge_adapter(base_dir: str | Path, adapter_dir: str | Path, output: Path) -> None:
    """Merged in float32: the adapter's update is added before any rounding."""
    from peft import PeftModel

    merged = PeftModel.from_pretrained(load_causal_lm(base_dir), str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(output, safe_serialization=True)
    save_tokenizer(load_tokenizer(base_dir), output)


def merge_and_quantize(base_dir: str | Path, adapter_dir: str | Path, output_dir: str | Path, ptq: Quantization,
                       precision: str | None = None, finish: Callable[[Path], None] | None = None) -> dict:
    """Write the quantized merged model to output_dir (with sizes.json) and
    return the sizes on disk of the adapter, the merged and the quantized model.
    `finish` runs on the complete folder before it is moved into place."""
    with tempfile.TemporaryDirectory() as scratch:
        merged_dir = Path(scratch) / "merged"
        merge_adapter(base_dir, adapter_dir, merged_dir)
        quantized = load_causal_lm(merged_dir, ptq, precision)  # unquantized parts (norms, embeddings) in `precision`
        sizes = {"adapter_bytes": folder_bytes(adapter_dir), "merged_bytes": folder_bytes(merged_dir)}
        with atomic_dir(output_dir) as staging:
            quantized.save_pretrained(staging, safe_serialization=True)
            save_tokenizer(load_tokenizer(merged_dir), staging)
            load_causal_lm(staging, precision=precision)  # the saved checkpoint must reload as a quantized model
            sizes["quantized_bytes"] = folder_bytes(staging)
            write_json(Path(staging) / "sizes.json", {**sizes, "ptq": dataclasses.asdict(ptq)})
            if finish:
                finish(Path(staging))
    return sizes
