"""Process setup shared by the workflow's steps: logging to the rule's log file
and a thread count that matches what the scheduler granted."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from .errors import ConfigError, InputError, ModelSourceError


class RetryRefused(RuntimeError):
    """A retry of a job whose previous attempt failed on bad input."""


def setup(log_path: str | None, threads: int = 1, attempt: int = 1):
    """Send stdout/stderr to `log_path` (kept open for the process' life). A
    model job passes its `attempt` (the rules' `attempt` resource), so that a
    retry after a failure on bad input stops at once (refuse_retry_of_bad_input)."""
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "w", buffering=1, encoding="utf-8")
        sys.stdout = sys.stderr = stream
        logging.basicConfig(stream=stream, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        for handler in logging.getLogger().handlers:
            handler.addFilter(OncePerMessage("bitsandbytes"))
        refuse_retry_of_bad_input(Path(log_path), int(attempt))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # torch sizes its thread pool from this when a model step imports it; a
    # light step never imports torch (1.7 s saved per job)
    threads = max(1, int(threads))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


class OncePerMessage(logging.Filter):
    """Lets each distinct message of the `package` loggers through once (a
    handler's filter: a logger's own would miss its children's records).
    bitsandbytes logs its int8 matmul's dtype cast on every call: 52,000
    identical lines (6 MB) in one refine job's log, which hid everything else."""

    def __init__(self, package: str):
        super().__init__(package)  # logging.Filter(name) matches `package` and its child loggers
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not super().filter(record):
            return True
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


def jobs_import_from(folder: str | Path) -> None:
    """Processes started from this one (the workflow's jobs) import Python
    packages from `folder` first: its PYTHONPATH, ahead of what was there."""
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))


def bad_input_errors() -> tuple[type, ...]:
    """Errors a retry meets again: bad data, config or model files."""
    return InputError, ConfigError, ModelSourceError


def refuse_retry_of_bad_input(log_path: Path, attempt: int) -> None:
    """Snakemake retries a failed model job whatever the cause (its `retries`
    cannot look at the error). A failure on bad input leaves a marker beside the
    log; the retry that finds it stops before loading anything."""
    marker = log_path.with_name(log_path.name + ".bad-input")
    if attempt > 1 and marker.exists():
        raise RetryRefused(f"attempt {attempt} not run: attempt {attempt - 1} failed on bad input, and a retry "
                           f"would fail the same way:\n{marker.read_text(encoding='utf-8')}")
    marker.unlink(missing_ok=True)
    previous_hook = sys.excepthook

    def record_bad_input(kind, error, trace):
        if issubclass(kind, bad_input_errors()):
            marker.write_text(f"{kind.__name__}: {error}\n", encoding="utf-8")
        previous_hook(kind, error, trace)

    sys.excepthook = record_bad_input
