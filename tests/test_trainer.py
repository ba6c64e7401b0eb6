"""Training on transformers' Trainer: data-parallel processes (torchrun with
gloo on the CPU), gradient accumulation, bf16 on the CPU, live progress in
the log and TensorBoard events beside the adapter."""
import dataclasses
import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from refiner_lib import launch, prompts, stages, tasks, training
from refiner_lib.errors import InputError
from refiner_lib.settings import Schedule, TrainingOutputs, TrainingSettings, Validation

LORA = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj", "down_proj"]}
SCHEDULE = {"epochs": 1, "max_steps": 4, "batch_size": 1, "learning_rate": 2e-3, "warmup_steps": 1,
            "weight_decay": 0.0, "max_grad_norm": 1.0, "max_seq_len": 128}
# float32: the two runs differ only in how the sum over the global batch is split
ADAPTER_TOLERANCE = {"rtol": 1e-4, "atol": 1e-6}


QUESTIONS = ["Who founded the Varn Guild?", "Why do rivers flood?", "When was Oskel born?", "How do tides work?",
             "Where is Lake Orun?", "What causes rust?", "Which river feeds Tam?", "Why do birds migrate?",
             "Who built the Kessel bridge?", "Why is the sea salty?"]
HELD_OUT = 2  # train_job's validation records, which the query-analysis student is calibrated on


def label(i: int) -> str:
    return ["Local", "Global"][i % 2]


def records(count: int = len(QUESTIONS)) -> list[dict]:
    return [prompts.query_analysis_record(q, label(i)) for i, q in enumerate(QUESTIONS[:count])]


def settings(precision="float32", **schedule) -> TrainingSettings:
    return TrainingSettings.from_dict({"lora": LORA, "schedule": {**SCHEDULE, **schedule}, "quantization": None,
                                       "seed": 3, "precision": precision})


def train_job(tiny_model, folder: Path, training_settings: TrainingSettings, threads: int = 2) -> Path:
    """tasks.train on an Alpaca file and the teacher's labels, as the workflow's
    rule runs it (HELD_OUT records held out, validated at the end and
    calibrated on); the adapter folder."""
    folder.mkdir(parents=True)
    (folder / "train.json").write_text(json.dumps(records()))
    (folder / "labels.jsonl").write_text("".join(
        json.dumps({"label": label(i), "probabilities": {"Local": 0.3 + 0.4 * (label(i) == "Local"),
                                                         "Global": 0.3 + 0.4 * (label(i) == "Global")}}) + "\n"
        for i in range(len(QUESTIONS))))
    outputs = TrainingOutputs(folder / "adapter", folder / "loss.csv", folder / "metrics.json",
                              tensorboard_dir=folder / "tensorboard", log_every=2)
    held_out = dataclasses.replace(training_settings, validation=Validation(num_records=HELD_OUT, every_steps=100))
    tasks.train({"model": tiny_model, "records": folder / "train.json", "labels": folder / "labels.jsonl"}, outputs,
                held_out, "query_analysis", threads)
    assert json.loads((folder / "adapter" / stages.ANALYSIS_FILE).read_text())["records"] == HELD_OUT
    return folder / "adapter"


def test_two_processes_train_the_adapter_one_process_trains_with_the_same_global_batch(tiny_model, tmp_path):
    """DDP on gloo: 2 processes x batch 1 against 1 process x batch 1 x 2
    accumulation steps. Same records per optimizer step, same mean of two
    per-record losses; only the summation order of the gradients differs."""
    single = train_job(tiny_model, tmp_path / "one", settings(gradient_accumulation_steps=2))
    parallel = train_job(tiny_model, tmp_path / "two", settings(processes=2))
    a, b = load_file(single / "adapter_model.safetensors"), load_file(parallel / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    changed = [key for key in a if "lora_B" in key and a[key].abs().sum() > 0]
    assert changed  # B starts at zero: both trained
    for key in a:
        torch.testing.assert_close(a[key], b[key], **ADAPTER_TOLERANCE)
    metrics = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("one", "two")]
    assert [m["processes"] for m in metrics] == [1, 2] and {m["global_batch"] for m in metrics} == {2}
    assert metrics[0]["steps"] == metrics[1]["steps"] == 4
    assert not (tmp_path / "two" / "train_job.json").exists()  # the launcher's job file is removed


def test_the_launcher_picks_processes_and_backend(monkeypatch, tmp_path):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert launch.ddp_backend() is None and launch.is_main_process()
    with pytest.raises(ValueError):
        launch.command(1, tmp_path / "job.json")
    command = launch.command(4, tmp_path / "job.json")
    assert command[1:4] == ["-m", "torch.distributed.run", "--standalone"] and "--nproc-per-node=4" in command
    assert command[-3:] == ["-m", "refiner_lib.train_job", str(tmp_path / "job.json")]
    assert launch.process_environment(2, 8)["OMP_NUM_THREADS"] == "4"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert launch.ddp_backend() == "gloo" and launch.quantized_device_map() == "cpu" and not launch.is_main_process()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert launch.ddp_backend() == "nccl" and launch.quantized_device_map() == {"": 1}
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert launch.quantized_device_map() == "auto"


def test_global_batch_and_steps_count_as_the_trainer_does():
    schedule = Schedule(**{**SCHEDULE, "max_steps": 0, "batch_size": 2, "gradient_accumulation_steps": 3,
                           "processes": 2, "epochs": 2})
    assert schedule.global_batch == 12
    assert schedule.steps_per_epoch(25) == 3  # 7 batches on each process, in groups of 3 (the last one short)
    assert schedule.total_steps(25) == 6


def test_bf16_training_on_the_cpu(tiny_model, tmp_path):
    """The base computes in bfloat16 (the default where a CPU has AMX); the
    LoRA weights stay float32 and every one of them gets a gradient."""
    outputs = TrainingOutputs(tmp_path / "adapter", tmp_path / "loss.csv", tmp_path / "metrics.json")
    metrics = training.train_adapter(tiny_model, records(), settings("bfloat16"), outputs)
    assert metrics["steps"] == 4 and all(torch.isfinite(torch.tensor(metrics["final_train_loss"])).reshape(-1))
    weights = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    assert all(w.dtype == torch.float32 and torch.isfinite(w).all() for w in weights.values())
    assert all(w.abs().sum() > 0 for k, w in weights.items() if "lora_B" in k)
    student = training.prepare_model(tiny_model, settings().lora, None, "bfloat16")
    assert student.get_base_model().model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16


def test_progress_lines_and_tensorboard_events(tiny_model, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="refiner_lib.training"):
        train_job(tiny_model, tmp_path / "run", settings(max_steps=5), threads=1)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert [line.split()[1] for line in lines] == ["2/5", "4/5", "5/5"]  # every 2 steps and at the last
    for part in ("epoch", "loss", "lr", "tokens/s", "ETA"):
        assert part in lines[0]
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    assert "train/loss" in accumulator.Tags()["scalars"]
    assert len(accumulator.Scalars("train/loss")) == 5


def test_gradient_accumulation_and_checkpointing_keep_the_loss_curve(tiny_model, tmp_path):
    """Recomputing activations changes the memory, not the arithmetic."""
    curves = []
    for name, checkpointing in (("plain", False), ("checkpointed", True)):
        outputs = TrainingOutputs(tmp_path / name, tmp_path / f"{name}.csv")
        training.train_adapter(tiny_model, records(), settings(gradient_accumulation_steps=2,
                                                                gradient_checkpointing=checkpointing), outputs)
        curves.append([line.split(",")[2] for line in (tmp_path / f"{name}.csv").read_text().splitlines()[1:]])
    assert len(curves[0]) == 4 and curves[0] == curves[1]


@pytest.fixture(autouse=True)
def no_world(monkeypatch):
    """These tests start as one process whatever the environment says."""
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


def test_a_killed_job_takes_its_launched_processes_with_it(tmp_path):
    """torchrun starts with launch.die_with_parent: SIGKILL the job's process
    and its child goes too (a retry never trains beside a leftover)."""
    import signal
    import subprocess
    import sys
    import time

    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys\n"
         "from refiner_lib import launch\n"
         "child = subprocess.Popen(['sleep', '120'], preexec_fn=launch.die_with_parent)\n"
         "print(child.pid, flush=True)\n"
         "child.wait()\n"], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and running(child):
        time.sleep(0.05)
    assert not running(child), "the launched process outlived the killed job"


def running(pid: int) -> bool:
    """Alive and not a zombie awaiting its reaper."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("flags, expected", [
    ("fpu sse avx2 avx512f amx_tile amx_bf16", torch.bfloat16),  # an Intel Xeon with AMX
    ("fpu sse avx2 avx512f avx512_bf16", torch.bfloat16),  # an AMD EPYC (Zen 4)
    ("fpu sse avx2 avx512f", torch.float32),
    ("", torch.float32)])
def test_auto_precision_is_bf16_where_a_cpu_multiplies_it_natively(flags, expected):
    from refiner_lib.precision import auto_dtype

    assert auto_dtype(cuda=False, cpuinfo=f"processor : 0\nflags : {flags}\n") == expected


@pytest.mark.parametrize("supported, expected", [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_precision_on_a_gpu_follows_its_bf16_support(monkeypatch, supported, expected):
    from refiner_lib.precision import auto_dtype

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: supported)
    assert auto_dtype(cuda=True, cpuinfo="flags : avx512_bf16") == expected


def test_a_calibrated_stage_without_the_teachers_labels_is_refused(tiny_model, tmp_path):
    (tmp_path / "train.json").write_text(json.dumps(records()))
    outputs = TrainingOutputs(tmp_path / "adapter", tmp_path / "loss.csv")
    with pytest.raises(InputError, match=r"train\.json: a query_analysis student is calibrated .* labels file"):
        tasks.train({"model": tiny_model, "records": tmp_path / "train.json"}, outputs, settings(), "query_analysis")
    assert not (tmp_path / "adapter").exists()  # refused before training wrote anything
