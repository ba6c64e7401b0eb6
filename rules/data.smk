rule prepare_corpus:
    """A corpus, normalized and streamed into results/corpora/NAME, with the true
    trees known for it: one per corpus file, whichever datasets share it, or the
    corpus a dataset makes itself (synthetic articles, 2Wiki's context paragraphs)."""
    input:
        corpus_source_files,
    output:
        corpus=f"{CORPUS}/corpus.jsonl",
        trees=f"{CORPUS}/trees.jsonl",
    params:
        code=library_code("prepare_corpus"),
        source=declared_params("prepare_corpus", lambda settings, wc: settings["datasets"][corpus_owner(wc.corpus)]),
    log:
        log_path("prepare_corpus/{corpus}"),
    benchmark:
        benchmark_path("prepare_corpus/{corpus}")
    conda:
        "../envs/data.yaml"
    priority: upstream_priority
    script:
        "../workflow_scripts/prepare_corpus.py"


rule prepare_data:
    """A dataset's normalized questions (HotpotQA's and 2Wiki's supporting titles
    mapped to documents of its corpus)."""
    input:
        files=dataset_files,
        corpus=lambda wc: corpus_file(wc.dataset) if reads_titles(config["datasets"][wc.dataset]["layout"]) else [],
    output:
        questions=f"{DATASET}/data/questions.jsonl",
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
