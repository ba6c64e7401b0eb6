# Helpers shared by the rules: result paths, the variants, and per-rule inputs.
import re

from refiner_lib import prompts
from refiner_lib.config import BASELINES, trained_variant
from refiner_lib.models import source_state
from refiner_lib.provenance import script_code_hash

RESULTS = config.get("results", "results")
VARIANTS = list(config["training"]["variants"])
# A method is a baseline or a variant, refined and answered with Hugging Face
# transformers; with `vllm` in inference.backends, `METHOD@vllm` repeats each one
# vLLM can serve (a QLoRA adapter there runs on the 16-bit base; no PTQ variant).
BACKENDS = list(config["inference"]["backends"])
# baselines and ablations run no refiner model (refiner_lib.config.BASELINES)
HF_METHODS = list(BASELINES) + VARIANTS


def ptq_settings(variant):
    return config["training"]["variants"].get(variant, {}).get("ptq")


METHODS = HF_METHODS + [f"{m}@{backend}" for backend in BACKENDS if backend != "hf"
                        for m in HF_METHODS if not ptq_settings(m)]
TRAINED_STAGES = list(config["training"]["stages"])
STAGES = list(prompts.STAGES)
SPLITS = ["train", "eval"]
# model jobs die of preemption or out-of-memory on clusters; training resumes from its checkpoint
MODEL_JOB_RETRIES = config["retries"]


def attempt_number(wildcards, attempt):
    """A model job's attempt, as a resource its script reads: a retry after a
    failure on bad input stops at once (refiner_lib.runtime)."""
    return attempt

# GPUs a job asks a cluster for (resource `gpu`, sent by the SLURM plugin as --gpus):
# model jobs one, the rest none; the oracle teacher and the `full`/`teacher`
# refinements run no model.
TEACHER_GPUS = 1 if config["teacher"]["kind"] == "llm" else 0


wildcard_constraints:
    split="train|eval",
    stage="|".join(STAGES),
    variant="|".join(VARIANTS),
    method="|".join(re.escape(m) for m in METHODS),
    model="[A-Za-z0-9_.\\-]+",
    backend="|".join(BACKENDS),


def model_dir(role):
    return f"{RESULTS}/models/{config['roles'][role]}"


def teacher_model(wildcards):
    """The teacher model is an input only for an LLM teacher."""
    return model_dir("teacher") if config["teacher"]["kind"] == "llm" else []


def teacher_labels(stage, split):
    return f"{RESULTS}/teacher/{stage}/{split}_labels.jsonl"


def adapter_dir(stage, variant):
    return f"{RESULTS}/students/{stage}/{variant}/adapter"


def student_inputs(wildcards):
    """Per trained stage: the variant's adapter, or for a PTQ variant its merged
    and quantized model (built from the adapter of its trained sibling)."""
    method = base_method(wildcards.method)
    if method in BASELINES:
        return {}
    if ptq_settings(method):
        return {stage: f"{RESULTS}/students/{stage}/{method}/quantized" for stage in TRAINED_STAGES}
    return {stage: adapter_dir(stage, trained_variant(config, method)) for stage in TRAINED_STAGES}


def log_path(name):
    return f"{RESULTS}/logs/{name}.log"


def benchmark_path(name):
    return f"{RESULTS}/benchmarks/{name}.tsv"


def library_code(script):
    """Hash of the library code a rule's script reaches: a params entry, so that
    editing a module reruns exactly the rules that use it."""
    return script_code_hash(f"{workflow.basedir}/workflow_scripts/{script}.py")


def refined_by_stages(method):
    """`full` only cuts the retrieved text: no stage labels, no refinement settings."""
    return base_method(method) != "full"


def base_method(method):
    """The baseline or variant a method runs: `qlora@vllm` -> `qlora`."""
    return method.split("@")[0]


def method_backend(method):
    return method.split("@")[1] if "@" in method else "hf"


def methods_on(backend):
    """The methods whose generator runs on `backend` (timed together)."""
    return [m for m in METHODS if method_backend(m) == backend]


def runs_student(method):
    return base_method(method) not in BASELINES


def stage_labels(wildcards):
    if not refined_by_stages(wildcards.method):
        return {}
    return {f"{stage}_labels": teacher_labels(stage, "eval") for stage in STAGES}


def refine_inputs(wildcards):
    return {**student_inputs(wildcards), **stage_labels(wildcards)}


def training_metrics():
    """metrics.json of every trained (stage, variant): PTQ variants train nothing."""
    return [f"{RESULTS}/students/{stage}/{variant}/metrics.json"
            for stage in TRAINED_STAGES for variant in VARIANTS if not ptq_settings(variant)]


def objective(stage):
    """sft, or kd with its temperature and weight: the training settings a stage's objective decides."""
    if config["training"]["objective"][stage] == "kd":
        return {"kind": "kd", **config["training"]["distillation"]}
    return {"kind": "sft"}


def data_files():
    """The question and corpus files a real data set is read from (none for synthetic data)."""
    kind = config["data"]["kind"]
    if kind == "synthetic":
        return []
    return [config["data"][kind]["questions"], config["data"][kind]["corpus"]]


def whole_machine():
    """Threads of a timed job: every core the local scheduler has, so no other
    job runs beside it. On a cluster (no --cores) the profile's set-threads
    sizes it and `--exclusive` gives it a node of its own."""
    return workflow.resource_settings.cores or 1


def timing_settings():
    """The latency pass's sample: the same questions for every method."""
    return {**config["measurement"], "seed": config["seed"]}


def backend_settings(method):
    """The inference backend of a method and the settings it depends on."""
    return settings_of_backend(method_backend(method))


def settings_of_backend(backend):
    if backend == "vllm":
        return {"kind": "vllm", **config["inference"]["vllm"]}
    return {"kind": backend, "precision": config["precision"]}


def teacher_settings(stage):
    """What a stage's teacher job reads. The oracle reads the annotations (query
    analysis also its confidence); an LLM teacher its model settings, this
    stage's adapter and, where it generates, this stage's token limit."""
    teacher = config["teacher"]
    if teacher["kind"] != "llm":
        confidence = {"oracle_confidence": teacher["oracle_confidence"]} if stage == "query_analysis" else {}
        return {"kind": teacher["kind"], **confidence}
    limits = {stage: teacher["max_new_tokens"][stage]} if stage in teacher["max_new_tokens"] else {}
    return {"kind": "llm", "adapters": {stage: teacher["adapters"][stage]}, "batch_size": teacher["batch_size"],
            "max_input_tokens": teacher["max_input_tokens"], "max_new_tokens": limits,
            "precision": config["precision"]}


def refine_params(wildcards):
    """The settings that decide a method's refined contexts (not its timing)."""
    method = base_method(wildcards.method)
    return {
        "refinement": config["refinement"] if refined_by_stages(wildcards.method) else None,
        # the local scorer is BM25 with retrieval's constants (refiner_lib.bm25.BM25Params)
        "local_scorer": {key: config["retrieval"][key] for key in ("k1", "b", "epsilon")}
        if refined_by_stages(wildcards.method) else None,
        "max_context_tokens": config["generation"]["max_context_tokens"],
        "quantization": config["training"]["variants"].get(method, {}).get("quantization"),
        "ptq": ptq_settings(method),
        "trained_stages": TRAINED_STAGES if runs_student(wildcards.method) else [],
        "backend": backend_settings(wildcards.method),
    }
