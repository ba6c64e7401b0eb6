rule prepare_data:
    """Normalized questions, corpus and true structure trees."""
    input:
        data_files(),
    output:
        questions=f"{RESULTS}/data/questions.jsonl",
        corpus=f"{RESULTS}/data/corpus.jsonl",
        trees=f"{RESULTS}/data/trees.jsonl",
    params:
        code=library_code("prepare_data"),
        data=declared_params("prepare_data", lambda settings, wc: settings["data"]),
    log:
        log_path("prepare_data"),
    benchmark:
        benchmark_path("prepare_data")
    conda:
        "../envs/data.yaml"
    priority: upstream_priority
    script:
        "../workflow_scripts/prepare_data.py"


rule split_questions:
    """The train or eval part of a seeded permutation of the questions. Each part
    depends on its own size only: more eval questions retrain nothing."""
    input:
        rules.prepare_data.output.questions,
    output:
        f"{RESULTS}/data/{{split}}.jsonl",
    params:
        code=library_code("split_questions"),
        size=declared_params("split_questions", lambda settings, wc: settings["data"]["split"][f"num_{wc.split}"]),
        seed=declared_params("split_questions", lambda settings, wc: settings["seed"]),
    log:
        log_path("split_questions/{split}"),
    benchmark:
        benchmark_path("split_questions/{split}")
    conda:
        "../envs/data.yaml"
    priority: upstream_priority
    script:
        "../workflow_scripts/split_questions.py"
