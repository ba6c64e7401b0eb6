"""Thousands of malformed inputs for every reader of user files: each one loads
(and what loaded can be written out again) or stops with the project's own error
naming the file and the line (a config error: the file and the line or key).
A seeded generator, so a failure reproduces; the counts are printed."""
from __future__ import annotations

import json
import random
import re

import pytest
import yaml

from conftest import ROOT
from refiner_lib import config as config_module
from refiner_lib import data
from refiner_lib.errors import InputError
from refiner_lib.jsonl import read_json, write_jsonl

SEED = 20261130
CASES_PER_READER = 1500
CORPUS = [{"id": "d1", "contents": "Alpha\nAlpha is a river."}, {"id": "d2", "contents": "Beta\nBeta is a town."}]
VALID_RECORDS = {
    "corpus": [{"id": "d1", "contents": "Alpha\nAlpha is a river in the north."}, {"id": 7, "contents": "Beta\nA town."}],
    "flashrag": [{"id": "q1", "question": "Where is Alpha?", "golden_answers": ["north", "the north"]},
                 {"id": 2, "question": "What is Beta?", "golden_answers": ["a town"], "metadata": {"k": [1]}}],
    "hotpotqa": [{"id": "h1", "question": "Which river?", "answer": "Alpha", "type": "bridge",
                  "supporting_facts": {"title": ["Alpha", "Beta"], "sent_id": [0, 1]}},
                 {"id": "h2", "question": "Which town?", "answer": "Beta", "type": "comparison",
                  "supporting_facts": {"title": ["Beta"], "sent_id": [0]}}],
}
JUNK_VALUES = [None, True, 0, -1, 3.5, float("nan"), "", " ", "\ud800", "x" * 5000, [], [None], ["a", 1], {},
               {"a": {"b": [1, {"c": None}]}}, [[[[["deep"]]]]]]


def junk(rng: random.Random):
    return rng.choice(JUNK_VALUES)


def mutate_record(record: dict, rng: random.Random) -> dict:
    record = json.loads(json.dumps(record))
    key = rng.choice(list(record) + ["extra"])
    action = rng.randrange(3)
    if action == 0:
        record.pop(key, None)
    elif action == 1:
        record[key] = junk(rng)
    elif isinstance(record.get(key), dict) and record[key]:
        inner = rng.choice(list(record[key]))
        record[key][inner] = junk(rng)
    else:
        record[key] = junk(rng)
    return record


def serialize(records: list, rng: random.Random) -> bytes:
    lines = [json.dumps(r, ensure_ascii=rng.random() < 0.5, allow_nan=True) for r in records]
    ending = rng.choice(["\n", "\r\n"])
    return ending.join(lines).encode("utf-8", errors="surrogatepass") + ending.encode()


def mutate_bytes(raw: bytes, rng: random.Random, huge_words: int = 300_000) -> bytes:
    """Byte-level damage: truncation, bad encodings, BOMs, huge lines, nesting, junk lines."""
    kind = rng.randrange(10)
    position = rng.randrange(len(raw) + 1)
    if kind == 0:
        return raw[:position]
    if kind == 1:
        return raw[:position] + bytes([rng.choice([0xFF, 0xFE, 0xC3, 0x80, 0xE2, 0xED, 0x00])]) + raw[position:]
    if kind == 2:
        return b"\xef\xbb\xbf" + raw if rng.random() < 0.5 else raw[:position] + b"\xef\xbb\xbf" + raw[position:]
    if kind == 3:
        return raw + b'{"id": "big", "contents": "T\\n' + b"word " * rng.randrange(1, huge_words) + b'"}\n'
    if kind == 4:
        depth = rng.choice([50, 5_000, 200_000])
        return raw[:position] + b"[" * depth + b"]" * rng.randrange(depth + 1) + b"\n" + raw[position:]
    if kind == 5:
        return raw[:position] + rng.choice([b"\n{}\n", b"\n[]\n", b"\nnull\n", b"\n42\n", b'\n"text"\n', b"\n{\n",
                                            b"\nNaN\n", b"\n\t \n", b'\n{"id": "\\ud800"}\n']) + raw[position:]
    if kind == 6:
        data_bytes = bytearray(raw)
        for _ in range(rng.randrange(1, 6)):
            if data_bytes:
                data_bytes[rng.randrange(len(data_bytes))] = rng.randrange(256)
        return bytes(data_bytes)
    if kind == 7:
        return raw + raw  # every record twice
    if kind == 8:
        return raw.replace(b"\n", b"\r", rng.randrange(3))
    return b"" if rng.random() < 0.5 else b"\n  \n"


def inputs(layout: str, rng: random.Random):
    base = VALID_RECORDS[layout]
    for _ in range(CASES_PER_READER):
        records = [mutate_record(r, rng) if rng.random() < 0.5 else r for r in base]
        raw = serialize(records, rng)
        yield mutate_bytes(raw, rng) if rng.random() < 0.7 else raw


def named_error(message: str, path) -> bool:
    return message.startswith(f"{path}:") and re.match(rf"{re.escape(str(path))}:\d+", message) is not None \
        or message.startswith(f"{path}: ")


LOADERS = {
    "corpus": data.load_corpus,
    "flashrag": data.load_flashrag_questions,
    "hotpotqa": lambda path: data.load_hotpotqa(path, CORPUS),
}


@pytest.mark.parametrize("layout", sorted(LOADERS))
def test_every_malformed_data_file_loads_or_is_named(layout, tmp_path):
    rng = random.Random(f"{SEED}-{layout}")
    path, out = tmp_path / f"{layout}.jsonl", tmp_path / "written.jsonl"
    outcomes = {"loaded": 0, "named": 0}
    for number, raw in enumerate(inputs(layout, rng)):
        path.write_bytes(raw)
        try:
            loaded = LOADERS[layout](path)
        except InputError as error:
            assert named_error(str(error), path), f"case {number}: {error!s:.300}"
            line = re.match(rf"{re.escape(str(path))}:(\d+)", str(error))
            if line and b"\n" in raw:
                assert int(line.group(1)) <= raw.count(b"\n") + 1, f"case {number}: no such line in {error!s:.200}"
            outcomes["named"] += 1
            continue
        write_jsonl(out, loaded)  # what loaded is what prepare_data writes
        outcomes["loaded"] += 1
    print(f"{layout}: {CASES_PER_READER} inputs, {outcomes}")
    assert outcomes["loaded"] > 50 and outcomes["named"] > 500  # the generator makes both kinds


def test_every_malformed_json_file_loads_or_is_named(tmp_path):
    rng = random.Random(f"{SEED}-json")
    path = tmp_path / "records.json"
    named = 0
    for number in range(CASES_PER_READER):
        raw = json.dumps(VALID_RECORDS["flashrag"], indent=1).encode()
        path.write_bytes(mutate_bytes(raw, rng))
        try:
            read_json(path)
        except InputError as error:
            assert named_error(str(error), path), f"case {number}: {error!s:.300}"
            named += 1
    print(f"json: {CASES_PER_READER} inputs, {named} named errors")
    assert named > 500


def mutate_config(config: dict, rng: random.Random) -> dict:
    """Wrong types, missing and unknown keys anywhere in the tree."""
    config = json.loads(json.dumps(config))
    for _ in range(rng.randrange(1, 4)):
        node, key = config, None
        while isinstance(node, dict) and node and rng.random() < 0.75:
            key = rng.choice(list(node))
            if not isinstance(node[key], dict) or not node[key]:
                break
            node = node[key]
        if not isinstance(node, dict) or key is None or key not in node:
            continue
        choice = rng.randrange(3)
        if choice == 0:
            del node[key]
        elif choice == 1:
            node[key] = junk(rng) if rng.random() < 0.8 else {"unknown": 1}
        else:
            node[f"{key}_typo"] = node[key]
    return config


def test_every_malformed_config_loads_or_is_named(tmp_path):
    rng = random.Random(f"{SEED}-config")
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    default = yaml.safe_load(text)
    path = tmp_path / "my-config.yaml"
    outcomes = {"loaded": 0, "named": 0}
    for number in range(CASES_PER_READER):
        if rng.random() < 0.5:
            raw = mutate_bytes(text.encode("utf-8"), rng, huge_words=5_000)  # PyYAML is slow on megabyte lines
        else:
            raw = yaml.safe_dump(mutate_config(default, rng), allow_unicode=True).encode("utf-8", "surrogatepass")
        path.write_bytes(raw)
        try:
            config_module.load(path)
        except config_module.ConfigError as error:
            message = str(error)
            assert re.match(rf"{re.escape(str(path))}(:\d+(:\d+)?: |: key '[^']*': |: )", message), \
                f"case {number}: {message:.300}"
            outcomes["named"] += 1
            continue
        outcomes["loaded"] += 1
    print(f"config: {CASES_PER_READER} inputs, {outcomes}")
    assert outcomes["named"] > 500
