rule refine:
    """Refined context per eval question: `full` (all retrieved text cut to the
    generator's window), `teacher` (teacher labels for every stage) or a student
    variant (its adapters for the trained stages, teacher labels for the rest)."""
    input:
        unpack(refine_inputs),
        questions=f"{RESULTS}/data/eval.jsonl",
        retrieval=f"{RESULTS}/retrieval/eval.jsonl",
        corpus=rules.prepare_data.output.corpus,
        generator=model_dir("generator"),
        student=lambda wc: model_dir("student") if runs_student(wc.method) else [],
    output:
        refined=f"{RESULTS}/refined/{{method}}.jsonl",
        cost=f"{RESULTS}/refined/{{method}}.cost.json",
    params:
        code=library_code("refine"),
        refinement=lambda wc: config["refinement"] if refined_by_stages(wc.method) else None,
        max_context_tokens=config["generation"]["max_context_tokens"],
        warmup_questions=config["measurement"]["warmup_questions"],
        quantization=lambda wc: config["training"]["variants"].get(base_method(wc.method), {}).get("quantization"),
        ptq=lambda wc: ptq_settings(base_method(wc.method)),
        trained_stages=lambda wc: TRAINED_STAGES if runs_student(wc.method) else [],
        backend=lambda wc: backend_settings(wc.method),
    resources:
        gpu=lambda wc: 1 if runs_student(wc.method) else 0,
    log:
        log_path("refine/{method}"),
    benchmark:
        benchmark_path("refine/{method}")
    conda:
        "../envs/inference.yaml"
    retries: MODEL_JOB_RETRIES
    threads: 2
    script:
        "../workflow_scripts/refine.py"


rule generate:
    """The generator answers every eval question from its refined context."""
    input:
        refined=f"{RESULTS}/refined/{{method}}.jsonl",
        questions=f"{RESULTS}/data/eval.jsonl",
        generator=model_dir("generator"),
    output:
        answers=f"{RESULTS}/answers/{{method}}.jsonl",
        cost=f"{RESULTS}/answers/{{method}}.cost.json",
    params:
        code=library_code("generate"),
        generation=config["generation"],
        backend=lambda wc: backend_settings(wc.method),
        warmup_questions=config["measurement"]["warmup_questions"],
    resources:
        gpu=1,
    log:
        log_path("generate/{method}"),
    benchmark:
        benchmark_path("generate/{method}")
    conda:
        "../envs/inference.yaml"
    retries: MODEL_JOB_RETRIES
    threads: 2
    script:
        "../workflow_scripts/generate.py"
