"""A job's settings and input files, written beside its output so that a
finished results folder describes itself: the demo app rebuilds a method's
refiner and generator from these, exactly as the workflow ran them.

Paths are stored relative to the manifest's folder, so a results folder moved
as a whole still resolves."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from .errors import InputError
from .jsonl import read_json, write_json


def write(path: str | Path, settings: Mapping, files: Mapping) -> None:
    """files: name -> a path, or a list of paths (an input a job may not have is an empty list)."""
    folder = Path(path).parent.resolve()

    def relative(value):
        if isinstance(value, (str, os.PathLike)):
            return os.path.relpath(Path(value).resolve(), folder)
        return [relative(item) for item in value]

    write_json(path, {"settings": dict(settings), "files": {name: relative(value) for name, value in files.items()}})


def read(path: str | Path) -> tuple[dict, dict[str, str]]:
    """(settings, input files as paths that exist from here)."""
    document = read_json(path)
    if not isinstance(document, dict) or not isinstance(document.get("settings"), dict) \
            or not isinstance(document.get("files"), dict):
        raise InputError(f"{path}: expected an object with 'settings' and 'files' (written by the workflow)")
    folder = Path(path).parent

    def located(value):
        return str(folder / value) if isinstance(value, str) else [located(item) for item in value]

    return document["settings"], {name: located(value) for name, value in document["files"].items()}
