rule refine:
    """Refined context per eval question: `full` (all retrieved text cut to the
    generator's window), `teacher` (teacher labels for every stage) or a student
    variant (its adapters for the trained stages, teacher labels for the rest)."""
    input:
        unpack(student_inputs),
        questions=f"{RESULTS}/data/eval.jsonl",
        retrieval=f"{RESULTS}/retrieval/eval.jsonl",
        corpus=rules.prepare_data.output.corpus,
        generator=model_dir("generator"),
        student=lambda wc: [] if wc.method in ("full", "teacher") else model_dir("student"),
        query_analysis_labels=teacher_labels("query_analysis", "eval"),
        doc_structuring_labels=teacher_labels("doc_structuring", "eval"),
        global_selection_labels=teacher_labels("global_selection", "eval"),
    output:
        f"{RESULTS}/refined/{{method}}.jsonl",
    params:
        refinement=config["refinement"],
        max_context_tokens=config["generation"]["max_context_tokens"],
        quantization=lambda wc: config["training"]["variants"].get(wc.method, {}).get("quantization"),
        ptq=lambda wc: ptq_settings(wc.method),
        trained_stages=lambda wc: [] if wc.method in ("full", "teacher") else TRAINED_STAGES,
    log:
        log_path("refine/{method}"),
    benchmark:
        benchmark_path("refine/{method}")
    conda:
        "../envs/inference.yaml"
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
        f"{RESULTS}/answers/{{method}}.jsonl",
    params:
        generation=config["generation"],
    log:
        log_path("generate/{method}"),
    benchmark:
        benchmark_path("generate/{method}")
    conda:
        "../envs/inference.yaml"
    threads: 2
    script:
        "../workflow_scripts/generate.py"
