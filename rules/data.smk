rule prepare_data:
    """A dataset's normalized questions, corpus and true structure trees."""
    input:
        dataset_files,
    output:
        questions=f"{DATASET}/data/questions.jsonl",
        corpus=f"{DATASET}/data/corpus.jsonl",
        trees=f"{DATASET}/data/trees.jsonl",
    params:
        code=library_code("prepare_data"),
        dataset=declared_params("prepare_data", lambda settings, wc: settings["datasets"][wc.dataset]),
    log:
        log_path("prepare_data/{dataset}"),
    benchmark:
        benchmark_path("prepare_data/{dataset}")
    conda:
        "../envs/data.yaml"
    priority: upstream_priority
    script:
        "../workflow_scripts/prepare_data.py"


rule split_questions:
    """The train or eval part of a seeded permutation of a dataset's questions.
    Each part depends on its own size only: more eval questions retrain nothing."""
    input:
        rules.prepare_data.output.questions,
    output:
        f"{DATASET}/data/{{split}}.jsonl",
    params:
        code=library_code("split_questions"),
        size=declared_params("split_questions",
                             lambda settings, wc: settings["datasets"][wc.dataset]["split"][f"num_{wc.split}"]),
        seed=declared_params("split_questions", lambda settings, wc: settings["seed"]),
    log:
        log_path("split_questions/{dataset}/{split}"),
    benchmark:
        benchmark_path("split_questions/{dataset}/{split}")
    conda:
        "../envs/data.yaml"
    priority: upstream_priority
    script:
        "../workflow_scripts/split_questions.py"
