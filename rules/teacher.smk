# Teacher labels per dataset, stage and split: Alpaca training records + the
# teacher's scores. An oracle reads the dataset's annotations; an LLM teacher
# runs a base model with an optional LoRA adapter per stage. Students train on
# the train records of every dataset, merged (merge_training_records).


rule query_analysis:
    input:
        questions=f"{DATASET}/data/{{split}}.jsonl",
        model=teacher_model,
    output:
        records=f"{DATASET}/teacher/query_analysis/{{split}}.json",
        labels=teacher_labels("query_analysis", "{split}"),
    params:
        code=library_code("teacher_query_analysis"),
        teacher=declared_params("query_analysis", teacher_settings),
    resources:
        gpu=teacher_gpus,
        attempt=attempt_number,
    log:
        log_path("query_analysis/{dataset}/{split}"),
    benchmark:
        benchmark_path("query_analysis/{dataset}/{split}")
    conda:
        "../envs/inference.yaml"
    retries: MODEL_JOB_RETRIES
    threads: teacher_threads
    priority: upstream_priority
    script:
        "../workflow_scripts/teacher_query_analysis.py"


rule doc_structuring:
    input:
        questions=f"{DATASET}/data/{{split}}.jsonl",
        retrieval=f"{DATASET}/retrieval/{{split}}.jsonl",
        corpus=lambda wc: corpus_file(wc.dataset),
        trees=lambda wc: corpus_file(wc.dataset, "trees.jsonl"),
        model=teacher_model,
    output:
        records=f"{DATASET}/teacher/doc_structuring/{{split}}.json",
        labels=teacher_labels("doc_structuring", "{split}"),
    params:
        code=library_code("teacher_doc_structuring"),
        teacher=declared_params("doc_structuring", teacher_settings),
    resources:
        gpu=teacher_gpus,
        attempt=attempt_number,
    log:
        log_path("doc_structuring/{dataset}/{split}"),
    benchmark:
        benchmark_path("doc_structuring/{dataset}/{split}")
    conda:
        "../envs/inference.yaml"
    retries: MODEL_JOB_RETRIES
    threads: teacher_threads
    priority: upstream_priority
    script:
        "../workflow_scripts/teacher_doc_structuring.py"


rule global_selection:
    input:
        questions=f"{DATASET}/data/{{split}}.jsonl",
        retrieval=f"{DATASET}/retrieval/{{split}}.jsonl",
        structure=teacher_labels("doc_structuring", "{split}"),
        model=teacher_model,
    output:
        records=f"{DATASET}/teacher/global_selection/{{split}}.json",
        labels=teacher_labels("global_selection", "{split}"),
    params:
        code=library_code("teacher_global_selection"),
        teacher=declared_params("global_selection", teacher_settings),
    resources:
        gpu=teacher_gpus,
        attempt=attempt_number,
    log:
        log_path("global_selection/{dataset}/{split}"),
    benchmark:
        benchmark_path("global_selection/{dataset}/{split}")
    conda:
        "../envs/inference.yaml"
    retries: MODEL_JOB_RETRIES
    threads: teacher_threads
    priority: upstream_priority
    script:
        "../workflow_scripts/teacher_global_selection.py"


rule merge_training_records:
    """A stage's training records and teacher labels: every dataset's train part,
    in the config's order of datasets (labels stay aligned with their records)."""
    input:
        records=expand(f"{DATASET}/teacher/{{{{stage}}}}/train.json", dataset=DATASETS),
        labels=expand(teacher_labels("{{stage}}", "train"), dataset=DATASETS),
    output:
        records=f"{RESULTS}/teacher/{{stage}}/train.json",
        labels=merged_teacher_labels("{stage}"),
    params:
        code=library_code("merge_training_records"),
    log:
        log_path("merge_training_records/{stage}"),
    benchmark:
        benchmark_path("merge_training_records/{stage}")
    conda:
        "../envs/data.yaml"
    priority: upstream_priority
    script:
        "../workflow_scripts/merge_training_records.py"
