# BM25 per corpus (shared by the datasets that name it), top-k per dataset and split.
rule build_bm25_index:
    input:
        corpus=rules.prepare_corpus.output.corpus,
    output:
        # .npy arrays, string tables and meta.json (refiner_lib/bm25.py), memory-mapped when read
        index=directory(f"{CORPUS}/bm25"),
    params:
        code=library_code("build_bm25_index"),
        bm25=declared_params("build_bm25_index", lambda settings, wc: settings["retrieval"]),
    log:
        log_path("build_bm25_index/{corpus}"),
    benchmark:
        benchmark_path("build_bm25_index/{corpus}")
    conda:
        "../envs/data.yaml"
    priority: upstream_priority
    script:
        "../workflow_scripts/build_bm25_index.py"


rule retrieve:
    input:
        index=lambda wc: f"{RESULTS}/corpora/{corpus_of(wc.dataset)}/bm25",
        questions=rules.split_questions.output[0],
    output:
        f"{DATASET}/retrieval/{{split}}.jsonl",
    params:
        code=library_code("retrieve"),
        top_k=declared_params("retrieve", lambda settings, wc: settings["retrieval"]["top_k"]),
    log:
        log_path("retrieve/{dataset}/{split}"),
    benchmark:
        benchmark_path("retrieve/{dataset}/{split}")
    conda:
        "../envs/data.yaml"
    priority: upstream_priority
    script:
        "../workflow_scripts/retrieve.py"
