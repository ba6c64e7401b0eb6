"""Validated JSON/JSONL reading and atomic writing.

Every reader error names the file, the line (or record) and the field, so a
user can fix bad input without guessing. Every writer goes through a
temporary file in the same folder and an atomic rename, so a failed step never
leaves a half-written output behind.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import InputError


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line_number, record) for every non-blank line of a JSONL file.
    A UTF-8 byte-order mark is allowed at the start; any other byte that is not
    UTF-8 is an error naming its line and column."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            line = decode_line(raw, line_number, path)
            if not line.strip():
                continue
            record = parse_json(line.rstrip("\r\n"), path, line_number)
            if LONE_SURROGATE_ESCAPE.search(line):
                check_encodable(record, f"{path}:{line_number}")
            if not isinstance(record, dict):
                raise InputError(f"{path}:{line_number}: expected a JSON object, got {type(record).__name__}")
            yield line_number, record


LONE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # may be half of a pair, or alone


def check_encodable(record: Any, where: str) -> None:
    """JSON may escape half a UTF-16 pair (\\ud800); Python then holds a string
    no UTF-8 file can store, so every later write would fail."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{where}: a \\u escape encodes half a UTF-16 surrogate pair, not a character") from None


def decode_line(raw: bytes, line_number: int, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig" if line_number == 1 else "utf-8")
    except UnicodeDecodeError as error:
        column = len(raw[:error.start].decode("utf-8", errors="replace")) + 1
        raise InputError(f"{path}:{line_number}: not UTF-8 text (byte 0x{raw[error.start]:02x} at column {column}); "
                         "save the file as UTF-8") from None


def json_problem(error: json.JSONDecodeError) -> str:
    """'Unterminated string at column 5': json's own messages may end in 'at'."""
    message = error.msg.removesuffix(" at").removesuffix(" starting")
    return f"{message} at column {error.colno}"


def parse_json(text: str, path: Path, line_number: int | None = None) -> Any:
    """json.loads with errors naming the file, the line (a JSONL line's number,
    else the error's) and the column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}:{line_number or error.lineno}: malformed JSON ({json_problem(error)})") from None
    except RecursionError:
        where = f"{path}:{line_number}" if line_number else str(path)
        raise InputError(f"{where}: malformed JSON (nested too deeply)") from None


def require(record: dict, field: str, kind: type | tuple, where: str) -> Any:
    """Return record[field], checking presence and type; `where` is 'file:line'."""
    if field not in record:
        raise InputError(f"{where}: missing field '{field}'")
    value = record[field]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in kinds):  # JSON true is no id
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise InputError(f"{where}: field '{field}' must be {names}, got {type(value).__name__}")
    return value


def require_text(record: dict, field: str, where: str) -> str:
    """A string field that must not be empty or blank."""
    value = require(record, field, str, where)
    if not value.strip():
        raise InputError(f"{where}: field '{field}' is empty")
    return value


def check_unique(ids: Iterable[tuple[str, str]], path: str | Path, field: str = "id") -> None:
    """ids: (id, where) pairs; fail on the first duplicate, naming both places."""
    seen: dict[str, str] = {}
    for record_id, where in ids:
        if record_id in seen:
            raise InputError(f"{where}: duplicate {field} '{record_id}' (first seen at {seen[record_id]})")
        seen[record_id] = where


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line_number = raw.count(b"\n", 0, error.start) + 1
        start, end = raw.rfind(b"\n", 0, error.start) + 1, raw.find(b"\n", error.start)
        decode_line(raw[start:end if end >= 0 else len(raw)], line_number, path)  # raises, naming the line
        raise
    return parse_json(text, path)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ""):
    """Yield a temporary path beside `path`; rename it over `path` on success only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~current_umask())  # mkstemp makes 0600; outputs get the usual mode
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    count = 0
    with atomic_path(path) as temporary, temporary.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_json(path: str | Path, data: Any) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_csv(path: str | Path, rows: list[dict], columns: list[str]) -> None:
    with atomic_path(path) as temporary, temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def load_jsonl(path: str | Path) -> list[dict]:
    return [record for _, record in read_jsonl(path)]


class atomic_dir:
    """Build a folder under a temporary name and rename it into place on success."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        return self.staging

    def __exit__(self, kind, value, traceback):
        if kind is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            return False
        if self.path.exists():
            shutil.rmtree(self.path)
        os.chmod(self.staging, 0o777 & ~current_umask())  # mkdtemp makes 0700
        self.staging.rename(self.path)
        return False
