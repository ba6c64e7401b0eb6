"""How a training job runs: in this process, or as N data-parallel processes
on one node through torchrun (DistributedDataParallel under the Trainer): N
GPUs with NCCL, or N CPU processes with gloo, which is how CI tests the path."""
from __future__ import annotations

import os
import sys


def ddp_backend() -> str | None:
    """The collective backend of a data-parallel process; None in a single
    process (a backend named there would make accelerate start a process group)."""
    import torch

    if world_size() == 1:
        return None
    return "nccl" if torch.cuda.is_available() else "gloo"


def cpu_processes() -> bool:
    """Data-parallel processes without GPUs (accelerate's MULTI_CPU, with gloo)."""
    import torch

    return world_size() > 1 and not torch.cuda.is_available()


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def quantized_device_map():
    """Where bitsandbytes places a quantized base: each data-parallel process on
    its own GPU; a single process spreads it over the GPUs it sees."""
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    return {"": int(os.environ.get("LOCAL_RANK", "0"))} if world_size() > 1 else "auto"


def inference_device_map(cuda: bool | None = None) -> str | None:
    """Where an unquantized inference model loads: over the GPUs this process
    sees (accelerate's "auto"), or None: the CPU, where from_pretrained leaves it."""
    import torch

    cuda = torch.cuda.is_available() if cuda is None else cuda
    return "auto" if cuda else None


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def command(processes: int, job_file) -> list[str]:
    """The torchrun command that runs `refiner_lib.train_job` on `job_file` in
    `processes` processes on this node."""
    if processes < 2:
        raise ValueError("one process trains in the job's own process")
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            "-m", "refiner_lib.train_job", str(job_file)]


def process_environment(processes: int, threads: int) -> dict:
    """The job's threads shared between its processes."""
    return {**os.environ, "OMP_NUM_THREADS": str(max(1, threads // processes))}


def run_processes(job: dict, job_file, processes: int, threads: int) -> None:
    """Run a training job (refiner_lib.train_job's JSON) in `processes`
    data-parallel processes; their output goes to this process' log."""
    import subprocess

    from .jsonl import write_json

    write_json(job_file, job)
    try:
        subprocess.run(command(processes, job_file), env=process_environment(processes, threads), check=True,
                       stdout=sys.stdout, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    finally:
        os.unlink(job_file)


def die_with_parent() -> None:
    """Linux: torchrun gets SIGKILL when the job's process dies (a killed or
    cancelled job leaves no training behind to write beside its retry); its
    workers then lose their rendezvous and stop."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except OSError:  # not glibc Linux: nothing to arm
        pass
