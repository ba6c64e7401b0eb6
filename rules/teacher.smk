# Teacher labels per stage and split: Alpaca training records + the teacher's
# scores. An oracle reads the dataset's annotations; an LLM teacher runs a base
# model with an optional LoRA adapter per stage.


rule query_analysis:
    input:
        questions=f"{RESULTS}/data/{{split}}.jsonl",
        model=teacher_model,
    output:
        records=f"{RESULTS}/teacher/query_analysis/{{split}}.json",
        labels=teacher_labels("query_analysis", "{split}"),
    params:
        code=library_code("teacher_query_analysis"),
        teacher=declared_params("query_analysis", teacher_settings),
    resources:
        gpu=TEACHER_GPUS,
        attempt=attempt_number,
    log:
        log_path("query_analysis/{split}"),
    benchmark:
        benchmark_path("query_analysis/{split}")
    conda:
        "../envs/inference.yaml"
    retries: MODEL_JOB_RETRIES
    threads: TEACHER_THREADS
    priority: upstream_priority
    script:
        "../workflow_scripts/teacher_query_analysis.py"


rule doc_structuring:
    input:
        questions=f"{RESULTS}/data/{{split}}.jsonl",
        retrieval=f"{RESULTS}/retrieval/{{split}}.jsonl",
        corpus=rules.prepare_data.output.corpus,
        trees=rules.prepare_data.output.trees,
        model=teacher_model,
    output:
        records=f"{RESULTS}/teacher/doc_structuring/{{split}}.json",
        labels=teacher_labels("doc_structuring", "{split}"),
    params:
        code=library_code("teacher_doc_structuring"),
        teacher=declared_params("doc_structuring", teacher_settings),
    resources:
        gpu=TEACHER_GPUS,
        attempt=attempt_number,
    log:
        log_path("doc_structuring/{split}"),
    benchmark:
        benchmark_path("doc_structuring/{split}")
    conda:
        "../envs/inference.yaml"
    retries: MODEL_JOB_RETRIES
    threads: TEACHER_THREADS
    priority: upstream_priority
    script:
        "../workflow_scripts/teacher_doc_structuring.py"


rule global_selection:
    input:
        questions=f"{RESULTS}/data/{{split}}.jsonl",
        retrieval=f"{RESULTS}/retrieval/{{split}}.jsonl",
        structure=teacher_labels("doc_structuring", "{split}"),
        model=teacher_model,
    output:
        records=f"{RESULTS}/teacher/global_selection/{{split}}.json",
        labels=teacher_labels("global_selection", "{split}"),
    params:
        code=library_code("teacher_global_selection"),
        teacher=declared_params("global_selection", teacher_settings),
    resources:
        gpu=TEACHER_GPUS,
        attempt=attempt_number,
    log:
        log_path("global_selection/{split}"),
    benchmark:
        benchmark_path("global_selection/{split}")
    conda:
        "../envs/inference.yaml"
    retries: MODEL_JOB_RETRIES
    threads: TEACHER_THREADS
    priority: upstream_priority
    script:
        "../workflow_scripts/teacher_global_selection.py"
