rule materialize_model:
    """A local Hugging Face folder (safetensors, tokenizer, chat template) for
    each model named in the config."""
    output:
        directory(f"{RESULTS}/models/{{model}}"),
    params:
        source=lambda wc: config["models"][wc.model]["source"],
        sha256=lambda wc: config["models"][wc.model].get("sha256"),
    log:
        log_path("materialize_model/{model}"),
    benchmark:
        benchmark_path("materialize_model/{model}")
    conda:
        "../envs/models.yaml"
    threads: 2
    script:
        "../workflow_scripts/materialize_model.py"
