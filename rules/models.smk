rule materialize_model:
    """A local Hugging Face folder (safetensors, tokenizer, chat template) for
    each model named in the config."""
    output:
        directory(f"{RESULTS}/models/{{model}}"),
    params:
        code=library_code("materialize_model"),
        source=lambda wc: config["models"][wc.model]["source"],
        # a local folder's file names, sizes and times: an edited source is materialized again
        source_state=lambda wc: source_state(config["models"][wc.model]["source"]),
        sha256=lambda wc: config["models"][wc.model].get("sha256"),
        trust_remote_code=lambda wc: config["models"][wc.model]["trust_remote_code"],
    log:
        log_path("materialize_model/{model}"),
    benchmark:
        benchmark_path("materialize_model/{model}")
    conda:
        "../envs/models.yaml"
    threads: 2
    script:
        "../workflow_scripts/materialize_model.py"
