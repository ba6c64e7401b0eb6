"""Shared fixtures: real data from ../shared/data and real tiny models built here."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
HOTPOTQA = SHARED / "hotpotqa"
LONGREFINER = SHARED / "longrefiner"

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the Hub is unreachable here: fail fast, never hang


def need_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not found: the shared reference data sits beside the repository")
    return path


@pytest.fixture(scope="session")
def synthetic_data():
    from refiner_lib import data, synthetic

    return data.synthetic_dataset(synthetic.SyntheticSettings(seed=3, num_articles=12, num_questions=40, min_words=500,
                                                              max_words=900, global_fraction=0.25))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, synthetic_data) -> Path:
    """A tiny random Qwen2 (head_dim 32) with a BPE tokenizer trained on the synthetic corpus."""
    from refiner_lib.models import build_tiny_qwen2, train_tiny_tokenizer

    folder = tmp_path_factory.mktemp("models")
    _, corpus, _ = synthetic_data
    texts = [d["contents"] for d in corpus] + ["[Local] [Global] ['abstract'] <abstract> <section: x>"] * 20
    tokenizer = train_tiny_tokenizer(texts, folder / "tokenizer", vocab_size=1500)
    return build_tiny_qwen2(folder / "tiny-qwen2", tokenizer, hidden_size=64, layers=2, heads=2)


@pytest.fixture(scope="session")
def synthetic_run(tiny_model, tmp_path_factory):
    """One finished run of the tiny config (all four variants), from a private
    copy of the sources so that tests may edit library modules. Shared by the
    workflow tests and the demo app's browser test, which only reads it."""
    from workflow_helpers import copy_sources, run, tiny_config

    source = copy_sources(tmp_path_factory.mktemp("source"))
    workdir = tmp_path_factory.mktemp("run")
    config = tiny_config(tiny_model)
    first = run(workdir, config, source=source)
    assert first.returncode == 0, first.stderr[-4000:]
    return {"source": source, "workdir": workdir, "config": config}
