rule materialize_model:
    """A local Hugging Face folder (safetensors, tokenizer, chat template) for
    each model named in the config."""
    output:
        directory(f"{RESULTS}/models/{{model}}"),
    params:
        code=library_code("materialize_model"),
        model=declared_params("materialize_model", lambda settings, wc: settings["models"][wc.model]),
        # a local folder's file names, sizes and times: an edited source is materialized again
        source_state=declared_params("materialize_model",
                                     lambda settings, wc: source_state(settings["models"][wc.model]["source"])),
    log:
        log_path("materialize_model/{model}"),
    benchmark:
        benchmark_path("materialize_model/{model}")
    conda:
        "../envs/models.yaml"
    threads: 2
    priority: upstream_priority
    script:
        "../workflow_scripts/materialize_model.py"
