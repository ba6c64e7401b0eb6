rule prepare_data:
    """Normalized questions (train/eval split), corpus and true structure trees."""
    output:
        train=f"{RESULTS}/data/train.jsonl",
        eval=f"{RESULTS}/data/eval.jsonl",
        corpus=f"{RESULTS}/data/corpus.jsonl",
        trees=f"{RESULTS}/data/trees.jsonl",
    params:
        code=library_code("prepare_data"),
        data=config["data"],
        seed=config["seed"],
    log:
        log_path("prepare_data"),
    benchmark:
        benchmark_path("prepare_data")
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/prepare_data.py"
