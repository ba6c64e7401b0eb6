# Helpers shared by the rules: result paths, the variants, and per-rule inputs.
import re
from types import SimpleNamespace as Namespace

from refiner_lib import config_keys, prompts
from refiner_lib.config import BASELINES, CALIBRATED_STAGES, objective, student_training, trained_variant
from refiner_lib import data as datasets_lib
from refiner_lib.data import answer_metrics, corpus_keys, corpus_name, reads_titles, teacher_kind
from refiner_lib.sources import is_local
from refiner_lib.config_keys import base_method, method_backend, refined_by_stages, runs_student
from refiner_lib.models import source_state
from refiner_lib.provenance import script_code_hash

RESULTS = config.get("results", "results")
DATASETS = list(config["datasets"])
# a dataset's own outputs (data, retrieval, teacher labels, refined contexts,
# answers, timing, metrics), laid out as one run's results folder
DATASET = f"{RESULTS}/datasets/{{dataset}}"
# a corpus, prepared and indexed once for every dataset that names it
CORPUS = f"{RESULTS}/corpora/{{corpus}}"


def corpus_of(dataset):
    return corpus_name(dataset, config["datasets"][dataset])


CORPORA = list(dict.fromkeys(corpus_of(d) for d in DATASETS))


def corpus_owner(corpus):
    return datasets_lib.corpus_owner(config["datasets"], corpus)


def corpus_file(dataset, name="corpus.jsonl"):
    return f"{RESULTS}/corpora/{corpus_of(dataset)}/{name}"
VARIANTS = list(config["training"]["variants"])
BACKENDS = list(config["inference"]["backends"])
# baselines and variants, with their METHOD@vllm repeats (refiner_lib.config_keys.methods)
METHODS = config_keys.methods(config)


def ptq_settings(variant):
    return config["training"]["variants"].get(variant, {}).get("ptq")


TRAINED_STAGES = list(config["training"]["stages"])
STAGES = list(prompts.STAGES)
SPLITS = ["train", "eval"]
# model jobs die of preemption or out-of-memory on clusters; training resumes from its checkpoint
MODEL_JOB_RETRIES = config["retries"]


def attempt_number(wildcards, attempt):
    """A model job's attempt, as a resource its script reads: a retry after a
    failure on bad input stops at once (refiner_lib.runtime)."""
    return attempt

def dataset_teacher(wildcards):
    """oracle or llm: the dataset's own choice, else teacher.kind where it has annotations."""
    return config_keys.dataset_teacher(config, {"dataset": wildcards.dataset})


# GPUs a job asks a cluster for (resource `gpu`, sent by the SLURM plugin as --gpus):
# model jobs one, the rest none; the oracle teacher and the `full`/`teacher`
# refinements run no model.
def teacher_gpus(wildcards):
    return 1 if dataset_teacher(wildcards) == "llm" else 0


def teacher_threads(wildcards):
    """An LLM teacher runs a model on two cores; the oracle reads annotations on one."""
    return 2 if dataset_teacher(wildcards) == "llm" else 1


wildcard_constraints:
    dataset="|".join(re.escape(d) for d in DATASETS),
    corpus="|".join(re.escape(c) for c in CORPORA),
    split="train|eval",
    stage="|".join(STAGES),
    variant="|".join(VARIANTS),
    method="|".join(re.escape(m) for m in METHODS),
    model="[A-Za-z0-9_.\\-]+",
    backend="|".join(BACKENDS),


# Job order on a few cores: Snakemake starts the ready job of highest priority
# first. Left to itself it ran a PTQ chain (train `lora`, quantize, refine) last,
# and that refinement (bitsandbytes' LLM.int8 matmul is the slowest on a CPU)
# ran alone for 4 minutes beside an idle core. A training claims every core, and
# such a job waits for as long as one-core jobs keep a core busy: so data,
# retrieval and teacher labels, which gate everything, run first (before, an
# oracle teacher's one-second job waited behind two trainings, and a one-core
# generation ran alone in front of the next training), then every training,
# then quantization and the student refinements (PTQ first); the short baseline
# jobs fill the cores beside them.
QUANTIZE_PRIORITY = 40


def training_priority(wildcards):
    """Snakemake's default (ILP) scheduler starts the set of jobs with the
    largest *sum* of priorities: a training must outweigh one job of any other
    rule on each core, or two quantizations (2 x 40) start before it."""
    return 100 * whole_machine()


def upstream_priority(wildcards):
    """Above a training's."""
    return training_priority(wildcards) + 100


def refine_priority(wildcards):
    """Students before baselines (which refine in seconds), PTQ students first."""
    method = base_method(wildcards.method)
    if not runs_student(method):
        return 0
    return 25 if ptq_settings(method) else 20


def generate_priority(wildcards):
    return 10 if runs_student(wildcards.method) else 0


def model_dir(role):
    return f"{RESULTS}/models/{config['roles'][role]}"


def teacher_model(wildcards):
    """The teacher model is an input only for an LLM teacher."""
    return model_dir("teacher") if dataset_teacher(wildcards) == "llm" else []


def teacher_labels(stage, split, dataset="{dataset}"):
    """A dataset's labels (by default the path holds the {dataset} wildcard:
    an input function, whose paths Snakemake does not fill in, names its dataset)."""
    return f"{RESULTS}/datasets/{dataset}/teacher/{stage}/{split}_labels.jsonl"


def merged_teacher_labels(stage):
    """Every dataset's train labels of a stage: what students train on."""
    return f"{RESULTS}/teacher/{stage}/train_labels.jsonl"


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


def methods_on(backend):
    """The methods served on `backend`: their latency passes time them together."""
    return config_keys.methods_on(config, backend)


def stage_labels(wildcards):
    if not refined_by_stages(wildcards.method):
        return {}
    return {f"{stage}_labels": teacher_labels(stage, "eval", wildcards.dataset) for stage in STAGES}


def refine_inputs(wildcards):
    return {**student_inputs(wildcards), **stage_labels(wildcards)}


def timed_refiners(wildcards):
    """method -> the files of its own (student models, teacher labels) for every
    method on the backend: time_refine times them all."""
    return {method: refine_inputs(Namespace(dataset=wildcards.dataset, method=method))
            for method in methods_on(wildcards.backend)}


def times_students(wildcards):
    """Whether a student is among the methods time_refine times on the backend."""
    return any(map(runs_student, methods_on(wildcards.backend)))


def timed_refiner_files(wildcards):
    return sorted({path for files in timed_refiners(wildcards).values() for path in files.values()})


def training_metrics():
    """metrics.json of every trained (stage, variant): PTQ variants train nothing."""
    return [f"{RESULTS}/students/{stage}/{variant}/metrics.json"
            for stage in TRAINED_STAGES for variant in VARIANTS if not ptq_settings(variant)]


def dataset_files(wildcards):
    """The local question files a dataset is read from (none for synthetic data;
    a Hub dataset is fetched by the job)."""
    block = config["datasets"][wildcards.dataset]
    return [block[key] for key in ("questions", "eval_questions") if block.get(key) and is_local(block[key])]


def corpus_source_files(wildcards):
    """The local file a corpus is made from: the corpus file, or 2Wiki's questions."""
    block = config["datasets"][corpus_owner(wildcards.corpus)]
    return [block[key] for key in corpus_keys(block) if key in ("corpus", "questions") and is_local(block[key])]


def whole_machine():
    """Threads of a timed job: every core the local scheduler has, so no other
    job runs beside it. On a cluster (no --cores) the profile's set-threads
    sizes it and `--exclusive` gives it a node of its own."""
    return workflow.resource_settings.cores or 1


def job_config(rule, wildcards):
    """The part of the config a job of `rule` reads (refiner_lib.config_keys):
    every config value in its params comes from here, so that an edit reruns
    exactly the jobs that read the key."""
    return config_keys.declared(rule, config, dict(wildcards.items()))


def declared_params(rule, build):
    """A params entry: build(job's declared config, wildcards)."""
    return lambda wildcards: build(job_config(rule, wildcards), wildcards)


def timing_settings(settings):
    """The latency pass's sample: the same questions for every method."""
    return {**settings["measurement"], "seed": settings["seed"]}


def generation_settings(settings, wildcards):
    """`generation`, with the dataset's own answer length where it sets one."""
    own = settings.get("datasets", {}).get(wildcards.dataset, {}).get("max_new_tokens")  # absent: not declared
    return {**settings["generation"], **({"max_new_tokens": own} if own else {})}


def backend_settings(settings, backend):
    """An inference backend and the settings it depends on."""
    if backend == "vllm":
        return {"kind": "vllm", **settings["inference"]["vllm"]}
    return {"kind": backend, "precision": settings["precision"]}


def teacher_settings(settings, wildcards):
    """The dataset's teacher: the oracle reads its kind (query analysis also its
    confidence); an LLM teacher its model settings, its stage's adapter and its
    stage's token limit."""
    teacher = {k: v for k, v in settings.get("teacher", {}).items() if k != "kind"}
    kind = teacher_kind(settings["datasets"][wildcards.dataset], settings.get("teacher", {}).get("kind"))
    if kind != "llm":
        return {"kind": kind, **teacher}
    return {"max_new_tokens": {}, **teacher, "kind": kind, "precision": settings["precision"]}


def training_settings(settings, wildcards):
    """refiner_lib.settings.TrainingSettings: shared by every variant but `quantization`."""
    return student_training(settings, wildcards.stage, wildcards.variant)


def refine_params(settings, wildcards):
    """The settings that decide a method's refined contexts (not its timing)."""
    return method_params(settings, wildcards.method)


def timed_refine_params(settings, wildcards):
    """refine_params of every method on the backend."""
    return {method: method_params(settings, method) for method in methods_on(wildcards.backend)}


def method_params(settings, method):
    variant = settings.get("training", {}).get("variants", {}).get(base_method(method), {})
    student = runs_student(method)
    return {
        "refinement": settings.get("refinement"),
        # the local scorer is BM25 with retrieval's constants (refiner_lib.bm25.BM25Params)
        "local_scorer": settings.get("retrieval"),
        "max_context_tokens": settings["generation"]["max_context_tokens"],
        "quantization": variant.get("quantization"),
        "ptq": variant.get("ptq"),
        "trained_stages": settings["training"]["stages"] if student else [],
        "backend": backend_settings(settings, method_backend(method)) if student else None,
    }
