# Refinement and generation per dataset, in two passes. The quality pass (refine, generate)
# covers every eval question and may share the machine. The latency pass
# (time_refine and time_generate, each one job per inference backend for every
# method on it) times a seeded sample one question at a time and claims
# every core, so no other job runs beside it under the local executor; the
# SLURM profile gives it a whole node (--exclusive).


rule refine:
    """Refined context per eval question: a baseline (`full`, `local_only`,
    `selection_only`, `teacher`) or a student variant (its models for the
    trained stages, teacher labels for the rest)."""
    input:
        unpack(refine_inputs),
        questions=f"{DATASET}/data/eval.jsonl",
        retrieval=f"{DATASET}/retrieval/eval.jsonl",
        corpus=lambda wc: corpus_file(wc.dataset),
        generator=model_dir("generator"),
        student=lambda wc: model_dir("student") if runs_student(wc.method) else [],
    output:
        refined=f"{DATASET}/refined/{{method}}.jsonl",
        # the settings and files this job refined with: the demo app rebuilds the same refiner from it
        manifest=f"{DATASET}/refined/{{method}}.settings.json",
    params:
        code=library_code("refine"),
        settings=declared_params("refine", refine_params),
    resources:
        gpu=lambda wc: 1 if runs_student(wc.method) else 0,
        attempt=attempt_number,
    log:
        log_path("refine/{dataset}/{method}"),
    benchmark:
        benchmark_path("refine/{dataset}/{method}")
    conda:
        "../envs/inference.yaml"
    retries: MODEL_JOB_RETRIES
    priority: refine_priority
    threads: 1
    script:
        "../workflow_scripts/refine.py"


rule time_refine:
    """Every refiner's latency and peak memory, alone on the machine: one job per
    inference backend times each method on it in turn, each in a process of its
    own (forked after the job's imports), on the same seeded sample."""
    input:
        refiners=timed_refiner_files,
        questions=f"{DATASET}/data/eval.jsonl",
        retrieval=f"{DATASET}/retrieval/eval.jsonl",
        corpus=lambda wc: corpus_file(wc.dataset),
        generator=model_dir("generator"),
        student=lambda wc: model_dir("student") if times_students(wc) else [],
    output:
        f"{DATASET}/timing/refiner.{{backend}}.json",
    params:
        code=library_code("time_refine"),
        files=timed_refiners,
        settings=declared_params("time_refine", timed_refine_params),
        timing=declared_params("time_refine", lambda settings, wc: timing_settings(settings)),
    resources:
        gpu=lambda wc: 1 if times_students(wc) else 0,
        attempt=attempt_number,
    log:
        log_path("time_refine/{dataset}/{backend}"),
    benchmark:
        benchmark_path("time_refine/{dataset}/{backend}")
    conda:
        "../envs/inference.yaml"
    retries: MODEL_JOB_RETRIES
    threads: whole_machine()
    script:
        "../workflow_scripts/time_refine.py"


rule generate:
    """The generator answers every eval question from its refined context."""
    input:
        refined=f"{DATASET}/refined/{{method}}.jsonl",
        questions=f"{DATASET}/data/eval.jsonl",
        generator=model_dir("generator"),
    output:
        answers=f"{DATASET}/answers/{{method}}.jsonl",
        # the generator's settings and folder, for the demo app
        manifest=f"{DATASET}/answers/{{method}}.settings.json",
    params:
        code=library_code("generate"),
        generation=declared_params("generate", generation_settings),
        backend=declared_params("generate", lambda settings, wc: backend_settings(settings, method_backend(wc.method))),
    resources:
        gpu=1,
        attempt=attempt_number,
    log:
        log_path("generate/{dataset}/{method}"),
    benchmark:
        benchmark_path("generate/{dataset}/{method}")
    conda:
        "../envs/inference.yaml"
    retries: MODEL_JOB_RETRIES
    priority: generate_priority
    threads: 1
    script:
        "../workflow_scripts/generate.py"


rule time_generate:
    """The generator's latency and peak memory, alone on the machine: one job
    per inference backend times every method's contexts, interleaved."""
    input:
        refined=lambda wc: [f"{RESULTS}/datasets/{wc.dataset}/refined/{m}.jsonl" for m in methods_on(wc.backend)],
        questions=f"{DATASET}/data/eval.jsonl",
        generator=model_dir("generator"),
    output:
        f"{DATASET}/timing/generator.{{backend}}.json",
    params:
        code=library_code("time_generate"),
        methods=lambda wc: methods_on(wc.backend),
        generation=declared_params("time_generate", generation_settings),
        backend=declared_params("time_generate", lambda settings, wc: backend_settings(settings, wc.backend)),
        timing=declared_params("time_generate", lambda settings, wc: timing_settings(settings)),
    resources:
        gpu=1,
        attempt=attempt_number,
    log:
        log_path("time_generate/{dataset}/{backend}"),
    benchmark:
        benchmark_path("time_generate/{dataset}/{backend}")
    conda:
        "../envs/inference.yaml"
    retries: MODEL_JOB_RETRIES
    threads: whole_machine()
    script:
        "../workflow_scripts/time_generate.py"
