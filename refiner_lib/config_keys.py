"""Which config keys each rule's jobs read: the one declaration behind the
rules' params (rules/common.smk builds every job's params from `declared`,
which holds these keys and nothing else), the README's rerun table and the
every-key rerun test (tests/test_workflow.py,
test_editing_any_config_key_reruns_exactly_the_jobs_that_read_it).

A key is dotted (`training.lora.r`), or a tuple of its parts where a part may
hold a dot (a model's name: `("models", "qwen2.5-7b")`); a key names its whole
subtree (`datasets.encyclopedia.synthetic`). What a job reads can depend on the config itself (the
oracle teacher reads none of the LLM teacher's settings), so each rule's entry
is a function of the config and the job's wildcards. Keys that shape a job's
inputs (a model's role, a variant's quantization that picks the adapter a PTQ
variant merges) count as read too: Snakemake reruns a job whose inputs change.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from .config import BASELINES, CALIBRATED_STAGES, trained_variant
from .data import corpus_keys, corpus_owner, reads_titles, teacher_kind

Key = str | tuple[str, ...]
Keys = list[Key]
Wildcards = Mapping[str, str]

# Read by a job but changing none of its results, so kept out of params: an edit reruns nothing.
NO_RESULT = {
    "training.checkpoint_every_steps": "train_student: how often it saves its state for a resume",
    "training.log_every_steps": "train_student: how often it writes a progress line",
    "training.report_to": "train_student: where else it reports its curves",
    "retries": "every model rule: how often a failed job is tried again",
    "datasets.*.split": "split_questions: the other part's size, only to check that both parts fit",
}

# Keys that decide which jobs exist (an edit adds or removes jobs, besides any
# job that reads them); the every-key test counts a new job as one that reads the
# edit. A variant's name and whether it has `ptq` do too.
SHAPES_JOBS = {
    "results": "the folder of every output (every job runs again)",
    "roles": "which models materialize_model makes",
    "training.stages": "which stages train_student and quantize_student run",
    "inference.backends": "which METHOD@vllm jobs exist",
}


def base_method(method: str) -> str:
    """The baseline or variant a method runs: `qlora@vllm` -> `qlora`."""
    return method.split("@")[0]


def method_backend(method: str) -> str:
    return method.split("@")[1] if "@" in method else "hf"


def runs_student(method: str) -> bool:
    return base_method(method) not in BASELINES


def methods(config: Mapping) -> list[str]:
    """Every method: the baselines and variants, refined and answered with
    Hugging Face transformers; with `vllm` in inference.backends, `METHOD@vllm`
    repeats each one vLLM can serve (a QLoRA adapter there runs on the 16-bit
    base; no PTQ variant)."""
    variants = config["training"]["variants"]
    on_hf = list(BASELINES) + list(variants)
    return on_hf + [f"{method}@{backend}" for backend in config["inference"]["backends"] if backend != "hf"
                    for method in on_hf if not variants.get(method, {}).get("ptq")]


def methods_on(config: Mapping, backend: str) -> list[str]:
    """The methods served on `backend`: one latency pass times them together."""
    return [method for method in methods(config) if method_backend(method) == backend]


def refined_by_stages(method: str) -> bool:
    """`full` only cuts the retrieved text: no stage labels, no refinement settings."""
    return base_method(method) != "full"


def backend_keys(backend: str) -> Keys:
    return ["inference.vllm"] if backend == "vllm" else ["precision"]


def quantization_keys(config: Mapping, key: str) -> Keys:
    """A bitsandbytes block: 8 bits reads `bits` alone (LLM.int8 has no quant
    type, double quantization or compute dtype); 4 bits reads all of it."""
    try:
        block = lookup(config, key)
    except KeyError:
        block = None
    return [f"{key}.bits"] if block and block.get("bits") == 8 else [key]


def variant_keys(config: Mapping, variant: str) -> Keys:
    """A variant's quantization while training and after it (PTQ)."""
    prefix = f"training.variants.{variant}"
    return quantization_keys(config, f"{prefix}.quantization") + quantization_keys(config, f"{prefix}.ptq")


def sibling_keys(config: Mapping, variant: str) -> Keys:
    """A PTQ variant merges the adapter of the first trained variant with its
    training-time quantization: which one that is reads that variant's block."""
    sibling = trained_variant(config, variant)
    return [f"training.variants.{sibling}"] if sibling != variant else []


def materialize_model(config: Mapping, wc: Wildcards) -> Keys:
    return [("models", wc["model"])]  # a model's name may hold a dot


def dataset_key(wc: Wildcards, key: str) -> str:
    return f"datasets.{wc['dataset']}.{key}"  # a dataset's name holds no dot (the schema says so)


def prepare_corpus(config: Mapping, wc: Wildcards) -> Keys:
    """What the corpus is made from, read from the first dataset that names it
    (a corpus file, which its name also says; or a dataset's own settings)."""
    owner = corpus_owner(config["datasets"], wc["corpus"])
    return [f"datasets.{owner}.{key}" for key in corpus_keys(config["datasets"][owner])]


def prepare_data(config: Mapping, wc: Wildcards) -> Keys:
    """The layout and its question files or synthetic settings; the corpus file
    where supporting titles are mapped to its documents."""
    block = config["datasets"][wc["dataset"]]
    own = ["synthetic"] if block["layout"] == "synthetic" else ["questions", "eval_questions"]
    return [dataset_key(wc, key) for key in ["layout", *own, *(["corpus"] if reads_titles(block["layout"]) else [])]]


def split_questions(config: Mapping, wc: Wildcards) -> Keys:
    return [dataset_key(wc, f"split.num_{wc['split']}"), "seed"]


def build_bm25_index(config: Mapping, wc: Wildcards) -> Keys:
    return ["retrieval.k1", "retrieval.b", "retrieval.epsilon"]


def retrieve(config: Mapping, wc: Wildcards) -> Keys:
    return ["retrieval.top_k"]


def teacher_stage(stage: str) -> Callable[[Mapping, Wildcards], Keys]:
    """The oracle reads the annotations (query analysis also its confidence); an
    LLM teacher its model, this stage's adapter and, where it generates, this
    stage's token limit."""
    def keys(config: Mapping, wc: Wildcards) -> Keys:
        chosen = dataset_teacher_keys(config, wc)
        if dataset_teacher(config, wc) != "llm":
            return chosen + (["teacher.oracle_confidence"] if stage == "query_analysis" else [])
        limit = [f"teacher.max_new_tokens.{stage}"] if stage != "query_analysis" else []
        return chosen + ["roles.teacher", f"teacher.adapters.{stage}", "teacher.batch_size",
                         "teacher.max_input_tokens", "precision"] + limit
    return keys


def dataset_teacher(config: Mapping, wc: Wildcards) -> str:
    return teacher_kind(config["datasets"][wc["dataset"]], config["teacher"]["kind"])


def dataset_teacher_keys(config: Mapping, wc: Wildcards) -> Keys:
    """What picks a dataset's teacher: its own `teacher`, or else teacher.kind and
    whether its layout carries annotations."""
    if config["datasets"][wc["dataset"]].get("teacher"):
        return [dataset_key(wc, "teacher")]
    return ["teacher.kind", dataset_key(wc, "layout")]


def objective_keys(config: Mapping, stage: str) -> Keys:
    kd = config["training"]["objective"].get(stage) == "kd"
    return [f"training.objective.{stage}"] + (["training.distillation"] if kd else [])


def train_student(config: Mapping, wc: Wildcards) -> Keys:
    """Every variant trains with the same LoRA settings, schedule and validation;
    only its quantization differs."""
    quantization = quantization_keys(config, f"training.variants.{wc['variant']}.quantization")
    return ["roles.student", "training.lora", "training.schedule", "training.validation", *quantization, "seed",
            "precision"] + objective_keys(config, wc["stage"])


def quantize_student(config: Mapping, wc: Wildcards) -> Keys:
    """A PTQ variant's settings, and its training-time quantization (`null`),
    which picks the sibling whose adapter it merges. A query-analysis or
    global-selection student is calibrated again on the records training held out."""
    variant = wc["variant"]
    held_out = ["training.validation.num_records", "seed"] if wc["stage"] in CALIBRATED_STAGES else []
    return ["roles.student", *variant_keys(config, variant), *sibling_keys(config, variant), "precision"] + held_out


def student_refinement_keys(config: Mapping) -> Keys:
    """A student's generation limits: only a doc-structuring student generates
    (a global-selection student scores titles)."""
    structures = "doc_structuring" in config["training"]["stages"]
    return ["refinement.batch_size", "refinement.max_input_tokens"] + \
        (["refinement.max_new_tokens.doc_structuring"] if structures else [])


def refine(config: Mapping, wc: Wildcards) -> Keys:
    """A method's refined contexts: the budget and the local BM25 scorer (every
    method but `full`, which only cuts the retrieved text), and a student's
    models, limits and backend."""
    method = wc["method"]
    keys = ["roles.generator", "generation.max_context_tokens"]  # its tokenizer counts the budget
    if refined_by_stages(method):
        keys += ["refinement.budget_tokens", "retrieval.k1", "retrieval.b", "retrieval.epsilon"]
    if runs_student(method):
        variant = base_method(method)
        keys += ["roles.student", "training.stages", *variant_keys(config, variant), *student_refinement_keys(config),
                 *backend_keys(method_backend(method))]
        keys += sibling_keys(config, variant)
    return keys


def time_refine(config: Mapping, wc: Wildcards) -> Keys:
    """What every method on the backend refines with (one job times them all)."""
    keys: Keys = []
    for method in methods_on(config, wc["backend"]):
        keys += [key for key in refine(config, {**wc, "method": method}) if key not in keys]
    return keys + ["measurement", "seed"]


def generate(config: Mapping, wc: Wildcards) -> Keys:
    return ["roles.generator", "generation", dataset_key(wc, "max_new_tokens"),
            *backend_keys(method_backend(wc["method"]))]


def time_generate(config: Mapping, wc: Wildcards) -> Keys:
    return ["roles.generator", "generation", dataset_key(wc, "max_new_tokens"), *backend_keys(wc["backend"]),
            "measurement", "seed"]


def evaluate(config: Mapping, wc: Wildcards) -> Keys:
    """The dataset's answer metrics: its own list, or its layout's defaults."""
    if config["datasets"][wc["dataset"]].get("metrics"):
        return [dataset_key(wc, "metrics")]
    return [dataset_key(wc, "layout")]


def nothing(config: Mapping, wc: Wildcards) -> Keys:
    """Reads files only (which methods and students exist shapes its inputs)."""
    return []


READS: dict[str, Callable[[Mapping, Wildcards], Keys]] = {
    "materialize_model": materialize_model,
    "prepare_corpus": prepare_corpus,
    "prepare_data": prepare_data,
    "split_questions": split_questions,
    "build_bm25_index": build_bm25_index,
    "retrieve": retrieve,
    "query_analysis": teacher_stage("query_analysis"),
    "doc_structuring": teacher_stage("doc_structuring"),
    "global_selection": teacher_stage("global_selection"),
    "merge_training_records": nothing,
    "train_student": train_student,
    "quantize_student": quantize_student,
    "refine": refine,
    "time_refine": time_refine,
    "generate": generate,
    "time_generate": time_generate,
    "evaluate": evaluate,
    "summarize": nothing,
    "plot_results": nothing,
}


def reads(rule: str, config: Mapping, wildcards: Wildcards) -> Keys:
    return READS[rule](config, wildcards)


def parts(key: Key) -> tuple[str, ...]:
    return key if isinstance(key, tuple) else tuple(key.split("."))


def lookup(config: Mapping, key: Key):
    """The value at a key; a KeyError names the whole key."""
    node = config
    for part in parts(key):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def declared(rule: str, config: Mapping, wildcards: Wildcards) -> dict:
    """The part of `config` a job of `rule` reads, nested as in the config: the
    only config its params are built from. A declared key the config leaves out
    (an optional one) is absent here too."""
    subset: dict = {}
    for key in reads(rule, config, wildcards):
        try:
            value = lookup(config, key)
        except KeyError:
            continue
        *parents, last = parts(key)
        node = subset
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return subset


def is_read(key: Key, rule: str, config: Mapping, wildcards: Wildcards) -> bool:
    """Whether a job of `rule` reads the leaf `key` (it or a key above it is declared)."""
    return any(within(key, read) for read in reads(rule, config, wildcards))


def within(key: Key, block: Key) -> bool:
    """Whether `key` is `block` or a key under it; a `*` in `block` is any one
    part (`datasets.*.split`: the split of every dataset)."""
    head, block_parts = parts(key)[:len(parts(block))], parts(block)
    return len(head) == len(block_parts) and all(b in ("*", k) for k, b in zip(head, block_parts))
