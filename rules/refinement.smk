# Refinement and generation in two passes. The quality pass (refine, generate)
# covers every eval question and may share the machine. The latency pass
# (time_refine per method, time_generate per inference backend for every method
# at once, interleaved) times a seeded sample one question at a time and claims
# every core, so no other job runs beside it under the local executor; the
# SLURM profile gives it a whole node (--exclusive).


rule refine:
    """Refined context per eval question: a baseline (`full`, `local_only`,
    `selection_only`, `teacher`) or a student variant (its models for the
    trained stages, teacher labels for the rest)."""
    input:
        unpack(refine_inputs),
        questions=f"{RESULTS}/data/eval.jsonl",
        retrieval=f"{RESULTS}/retrieval/eval.jsonl",
        corpus=rules.prepare_data.output.corpus,
        generator=model_dir("generator"),
        student=lambda wc: model_dir("student") if runs_student(wc.method) else [],
    output:
        refined=f"{RESULTS}/refined/{{method}}.jsonl",
        # the settings and files this job refined with: the demo app rebuilds the same refiner from it
        manifest=f"{RESULTS}/refined/{{method}}.settings.json",
    params:
        code=library_code("refine"),
        settings=declared_params("refine", refine_params),
    resources:
        gpu=lambda wc: 1 if runs_student(wc.method) else 0,
        attempt=attempt_number,
    log:
        log_path("refine/{method}"),
    benchmark:
        benchmark_path("refine/{method}")
    conda:
        "../envs/inference.yaml"
    retries: MODEL_JOB_RETRIES
    priority: refine_priority
    threads: 1
    script:
        "../workflow_scripts/refine.py"


rule time_refine:
    """The refiner's latency and peak memory, alone on the machine."""
    input:
        unpack(refine_inputs),
        questions=f"{RESULTS}/data/eval.jsonl",
        retrieval=f"{RESULTS}/retrieval/eval.jsonl",
        corpus=rules.prepare_data.output.corpus,
        generator=model_dir("generator"),
        student=lambda wc: model_dir("student") if runs_student(wc.method) else [],
    output:
        f"{RESULTS}/timing/{{method}}.refine.json",
    params:
        code=library_code("time_refine"),
        settings=declared_params("time_refine", refine_params),
        timing=declared_params("time_refine", lambda settings, wc: timing_settings(settings)),
    resources:
        gpu=lambda wc: 1 if runs_student(wc.method) else 0,
        attempt=attempt_number,
    log:
        log_path("time_refine/{method}"),
    benchmark:
        benchmark_path("time_refine/{method}")
    conda:
        "../envs/inference.yaml"
    retries: MODEL_JOB_RETRIES
    threads: whole_machine()
    script:
        "../workflow_scripts/time_refine.py"


rule generate:
    """The generator answers every eval question from its refined context."""
    input:
        refined=f"{RESULTS}/refined/{{method}}.jsonl",
        questions=f"{RESULTS}/data/eval.jsonl",
        generator=model_dir("generator"),
    output:
        answers=f"{RESULTS}/answers/{{method}}.jsonl",
        # the generator's settings and folder, for the demo app
        manifest=f"{RESULTS}/answers/{{method}}.settings.json",
    params:
        code=library_code("generate"),
        generation=declared_params("generate", lambda settings, wc: settings["generation"]),
        backend=declared_params("generate", lambda settings, wc: backend_settings(settings, method_backend(wc.method))),
    resources:
        gpu=1,
        attempt=attempt_number,
    log:
        log_path("generate/{method}"),
    benchmark:
        benchmark_path("generate/{method}")
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
        refined=lambda wc: expand(f"{RESULTS}/refined/{{method}}.jsonl", method=methods_on(wc.backend)),
        questions=f"{RESULTS}/data/eval.jsonl",
        generator=model_dir("generator"),
    output:
        f"{RESULTS}/timing/generator.{{backend}}.json",
    params:
        code=library_code("time_generate"),
        methods=lambda wc: methods_on(wc.backend),
        generation=declared_params("time_generate", lambda settings, wc: settings["generation"]),
        backend=declared_params("time_generate", lambda settings, wc: backend_settings(settings, wc.backend)),
        timing=declared_params("time_generate", lambda settings, wc: timing_settings(settings)),
    resources:
        gpu=1,
        attempt=attempt_number,
    log:
        log_path("time_generate/{backend}"),
    benchmark:
        benchmark_path("time_generate/{backend}")
    conda:
        "../envs/inference.yaml"
    retries: MODEL_JOB_RETRIES
    threads: whole_machine()
    script:
        "../workflow_scripts/time_generate.py"
