# Helpers shared by the rules: result paths, the variants, and per-rule inputs.
from refiner_lib.config import trained_variant

RESULTS = config.get("results", "results")
VARIANTS = list(config["training"]["variants"])
METHODS = ["full", "teacher"] + VARIANTS
TRAINED_STAGES = list(config["training"]["stages"])
STAGES = ["query_analysis", "doc_structuring", "global_selection"]
SPLITS = ["train", "eval"]


wildcard_constraints:
    split="train|eval",
    stage="|".join(STAGES),
    variant="|".join(VARIANTS),
    method="|".join(METHODS),
    model="[A-Za-z0-9_.\\-]+",


def model_dir(role):
    return f"{RESULTS}/models/{config['roles'][role]}"


def teacher_model(wildcards):
    """The teacher model is an input only for an LLM teacher."""
    return model_dir("teacher") if config["teacher"]["kind"] == "llm" else []


def teacher_labels(stage, split):
    return f"{RESULTS}/teacher/{stage}/{split}_labels.jsonl"


def adapter_dir(stage, variant):
    return f"{RESULTS}/students/{stage}/{variant}/adapter"


def ptq_settings(variant):
    return config["training"]["variants"].get(variant, {}).get("ptq")


def student_inputs(wildcards):
    """Per trained stage: the variant's adapter, or for a PTQ variant its merged
    and quantized model (built from the adapter of its trained sibling)."""
    method = wildcards.method
    if method in ("full", "teacher"):
        return {}
    if ptq_settings(method):
        return {stage: f"{RESULTS}/students/{stage}/{method}/quantized" for stage in TRAINED_STAGES}
    return {stage: adapter_dir(stage, trained_variant(config, method)) for stage in TRAINED_STAGES}


def log_path(name):
    return f"{RESULTS}/logs/{name}.log"


def benchmark_path(name):
    return f"{RESULTS}/benchmarks/{name}.tsv"
