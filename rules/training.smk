rule train_student:
    """One LoRA adapter per (stage, variant): the same records, LoRA settings and
    schedule for every variant; only the variant's quantization differs."""
    input:
        model=model_dir("student"),
        records=f"{RESULTS}/teacher/{{stage}}/train.json",
        # distillation reads the teacher's scores; a query-analysis or global-selection
        # student is calibrated on the teacher's answers to the records training held out
        labels=lambda wc: merged_teacher_labels(wc.stage)
        if objective(config, wc.stage)["kind"] == "kd" or wc.stage in CALIBRATED_STAGES else [],
    output:
        adapter=directory(adapter_dir("{stage}", "{variant}")),
        loss=f"{RESULTS}/students/{{stage}}/{{variant}}/loss.csv",
        metrics=f"{RESULTS}/students/{{stage}}/{{variant}}/metrics.json",
        # `tensorboard --logdir results/students` shows every run's curves
        tensorboard=directory(f"{RESULTS}/students/{{stage}}/{{variant}}/tensorboard"),
    params:
        code=library_code("train_student"),
        settings=declared_params("train_student", training_settings),
    resources:
        # one GPU per data-parallel process
        gpu=config["training"]["schedule"].get("processes", 1),
        attempt=attempt_number,
    log:
        log_path("train_student/{stage}/{variant}"),
    benchmark:
        benchmark_path("train_student/{stage}/{variant}")
    conda:
        "../envs/training.yaml"
    retries: MODEL_JOB_RETRIES
    priority: training_priority
    # its throughput and peak memory are reported: it claims every core, as the latency pass does
    threads: whole_machine()
    script:
        "../workflow_scripts/train_student.py"


rule quantize_student:
    """Post-training quantization: merge the trained LoRA adapter into the base,
    quantize it with bitsandbytes, save and reload it. A query-analysis or
    global-selection student is calibrated again on the quantized model's own
    scores of the records training held out."""
    input:
        model=model_dir("student"),
        adapter=lambda wc: adapter_dir(wc.stage, trained_variant(config, wc.variant)),
        records=lambda wc: f"{RESULTS}/teacher/{wc.stage}/train.json" if wc.stage in CALIBRATED_STAGES else [],
        labels=lambda wc: merged_teacher_labels(wc.stage) if wc.stage in CALIBRATED_STAGES else [],
    output:
        directory(f"{RESULTS}/students/{{stage}}/{{variant}}/quantized"),
    params:
        code=library_code("quantize_student"),
        ptq=declared_params("quantize_student", lambda settings, wc: settings["training"]["variants"][wc.variant]["ptq"]),
        precision=declared_params("quantize_student", lambda settings, wc: settings["precision"]),
        # a calibrated student's calibration: fitted again on the records training held out
        held_out=declared_params("quantize_student", lambda settings, wc: {
            "records": settings["training"]["validation"]["num_records"], "seed": settings["seed"]}
            if wc.stage in CALIBRATED_STAGES else None),
    resources:
        gpu=1,
        attempt=attempt_number,
    log:
        log_path("quantize_student/{stage}/{variant}"),
    benchmark:
        benchmark_path("quantize_student/{stage}/{variant}")
    conda:
        "../envs/training.yaml"
    retries: MODEL_JOB_RETRIES
    priority: QUANTIZE_PRIORITY
    # untimed: one core, so that it runs beside another job
    threads: 1
    script:
        "../workflow_scripts/quantize_student.py"
