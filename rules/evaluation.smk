rule evaluate:
    input:
        questions=f"{DATASET}/data/eval.jsonl",
        refined=rules.refine.output.refined,
        answers=rules.generate.output.answers,
        refine_cost=lambda wc: f"{RESULTS}/datasets/{wc.dataset}/timing/refiner.{method_backend(wc.method)}.json",
        generate_cost=lambda wc: f"{RESULTS}/datasets/{wc.dataset}/timing/generator.{method_backend(wc.method)}.json",
        query_labels=lambda wc: teacher_labels("query_analysis", "eval", wc.dataset)
        if refined_by_stages(wc.method) else [],
    output:
        f"{DATASET}/metrics/{{method}}.json",
    params:
        code=library_code("evaluate"),
        metrics=declared_params("evaluate", lambda settings, wc: answer_metrics(settings["datasets"][wc.dataset])),
    log:
        log_path("evaluate/{dataset}/{method}"),
    benchmark:
        benchmark_path("evaluate/{dataset}/{method}")
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/evaluate.py"


rule summarize:
    """One row per dataset and variant, and per variant over every dataset, with
    95% intervals (results/summary.csv), paired comparisons against lora and
    teacher (results/paired.csv), and results/summary.md."""
    input:
        metrics=expand(f"{DATASET}/metrics/{{method}}.json", dataset=DATASETS, method=METHODS),
        training=training_metrics(),
    output:
        csv=report(f"{RESULTS}/summary.csv", caption="../report/summary.rst", category="Tables"),
        paired=report(f"{RESULTS}/paired.csv", caption="../report/paired.rst", category="Tables"),
        md=f"{RESULTS}/summary.md",
        html=report(f"{RESULTS}/summary.html", caption="../report/summary_html.rst", category="Tables"),
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


rule plot_results:
    """F1 against latency, memory and FLOPs with the Pareto frontier marked, the
    refinement quality with intervals, and the training loss curves; each plot
    is in the HTML report with its caption."""
    input:
        summary=rules.summarize.output.csv,
        losses=[path.replace("metrics.json", "loss.csv") for path in training_metrics()],
    output:
        latency=report(f"{RESULTS}/plots/f1_vs_latency.png", caption="../report/f1_vs_latency.rst",
                       category="Trade-offs"),
        memory=report(f"{RESULTS}/plots/f1_vs_memory.png", caption="../report/f1_vs_memory.rst",
                      category="Trade-offs"),
        flops=report(f"{RESULTS}/plots/f1_vs_flops.png", caption="../report/f1_vs_flops.rst", category="Trade-offs"),
        losses=report(f"{RESULTS}/plots/loss_curves.png", caption="../report/loss_curves.rst", category="Training"),
        quality=report(f"{RESULTS}/plots/refinement_quality.png", caption="../report/refinement_quality.rst",
                       category="Quality"),
    params:
        code=library_code("plot_results"),
    log:
        log_path("plot_results"),
    benchmark:
        benchmark_path("plot_results")
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/plot_results.py"
