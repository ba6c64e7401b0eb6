"""Where question sets and corpora are read from: a local JSON array, JSONL or
Parquet file, or a dataset on the Hugging Face Hub (`hf:` names).

Every reader yields (where, record): `where` names the file and the line
(`file:line`, JSONL) or the record (`file: record N`, from 0), so that every
loader's error can name the file, the record and the field.

JSON and JSONL are read here, line by line, not through the `datasets` library:
its JSON builder infers one Arrow schema for the whole file, so a record that
lacks a field comes back with it set to null and a malformed line is reported
without its number. Parquet files and Hub datasets, whose records have no lines,
are read with `datasets` (the loaders check each field of each record the same way).
"""
from __future__ import annotations

import codecs
from pathlib import Path
from typing import Iterator

from .errors import InputError
from .jsonl import check_encodable, read_json, read_jsonl

HUB_PREFIX = "hf:"


def read_records(source: str | Path) -> list[tuple[str, dict]]:
    """(where, record) for every record of `source`; a source without records is
    an error (an empty question set is no evaluation, an empty corpus no retrieval)."""
    records = list(iter_records(source))
    if not records:
        raise InputError(f"{source}: the file has no records")
    return records


def iter_records(source: str | Path) -> Iterator[tuple[str, dict]]:
    """(where, record), one at a time: a JSONL file of any size is never held
    whole (a JSON array, a Parquet file or a Hub split is)."""
    source = str(source)
    if source.startswith(HUB_PREFIX):
        yield from hub_records(source)
    elif source.endswith(".parquet"):
        yield from parquet_records(source)
    elif not source.endswith(".jsonl") and starts_with_bracket(source):  # a .json file may be either
        yield from json_array_records(source)
    else:
        yield from ((f"{source}:{line}", record) for line, record in read_jsonl(source))


def json_array_records(path: str) -> Iterator[tuple[str, dict]]:
    for index, record in enumerate(read_json(path)):
        where = f"{path}: record {index}"
        if not isinstance(record, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}")
        check_encodable(record, where)  # read_jsonl checks this itself, read_json does not
        yield where, record


def parquet_records(path: str) -> Iterator[tuple[str, dict]]:
    import datasets

    if not Path(path).is_file():
        raise InputError(f"{path}: file not found")
    try:
        table = datasets.Dataset.from_parquet(path, keep_in_memory=True)
    except Exception as error:  # pyarrow names no record: its own message is the most a user gets
        raise InputError(f"{path}: not a readable Parquet file ({error})") from None
    for index, record in enumerate(table):
        yield f"{path}: record {index}", record


def hub_dataset(name: str) -> tuple[str, str | None, str]:
    """`hf:OWNER/NAME[/CONFIG]:SPLIT` -> (repository, configuration, split);
    e.g. hf:RUC-NLPIR/FlashRAG_datasets/nq:test."""
    body = name.removeprefix(HUB_PREFIX)
    path, colon, split = body.rpartition(":")
    parts = path.split("/") if colon else []
    if not split or len(parts) not in (2, 3) or not all(parts):
        raise InputError(f"{name}: a Hub dataset is named hf:OWNER/NAME[/CONFIG]:SPLIT "
                         "(e.g. hf:RUC-NLPIR/FlashRAG_datasets/nq:test)")
    return "/".join(parts[:2]), parts[2] if len(parts) == 3 else None, split


def hub_records(name: str) -> Iterator[tuple[str, dict]]:
    import datasets

    repository, configuration, split = hub_dataset(name)
    table = datasets.load_dataset(repository, configuration, split=split)
    for index, record in enumerate(table):
        yield f"{name}: record {index}", record


def is_local(source: str) -> bool:
    """A file the workflow can track (a Hub name is fetched by the job itself)."""
    return not str(source).startswith(HUB_PREFIX)


def starts_with_bracket(path: str | Path) -> bool:
    """Whether the file's first non-blank character (after a UTF-8 BOM) is '['."""
    path = Path(path)
    if not path.is_file():
        return False  # read_jsonl then reports the missing file
    with path.open("rb") as handle:
        head = handle.read(len(codecs.BOM_UTF8)).removeprefix(codecs.BOM_UTF8)
        while not head.strip() and (chunk := handle.read(65536)):
            head = chunk
    return head.lstrip()[:1] == b"["


def strip_where(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "_where"} for r in records]
