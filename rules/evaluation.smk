rule evaluate:
    input:
        questions=f"{RESULTS}/data/eval.jsonl",
        refined=f"{RESULTS}/refined/{{method}}.jsonl",
        answers=f"{RESULTS}/answers/{{method}}.jsonl",
        query_labels=lambda wc: teacher_labels("query_analysis", "eval") if refined_by_stages(wc.method) else [],
    output:
        f"{RESULTS}/metrics/{{method}}.json",
    params:
        code=library_code("evaluate"),
    log:
        log_path("evaluate/{method}"),
    benchmark:
        benchmark_path("evaluate/{method}")
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/evaluate.py"


rule summarize:
    """One row per variant: results/summary.csv and results/summary.md."""
    input:
        expand(f"{RESULTS}/metrics/{{method}}.json", method=METHODS),
    output:
        csv=f"{RESULTS}/summary.csv",
        md=f"{RESULTS}/summary.md",
    params:
        code=library_code("summarize"),
    log:
        log_path("summarize"),
    benchmark:
        benchmark_path("summarize")
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/summarize.py"
