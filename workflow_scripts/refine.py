from refiner_lib.runtime import setup
from refiner_lib.tasks import refine_variant

setup(snakemake.log[0], snakemake.threads)
i, p = snakemake.input, snakemake.params
labels = {stage: i[f"{stage}_labels"] for stage in ("query_analysis", "doc_structuring", "global_selection")
          if f"{stage}_labels" in i.keys()}
refinement = p.refinement or {}
student = None
if p.trained_stages:
    per_stage = {stage: i[stage] for stage in p.trained_stages}
    student = {"model_dir": i.student, "quantization": p.quantization, "backend": p.backend,
               # a PTQ variant brings one merged, quantized model per stage; the others bring adapters
               "stage_models": per_stage if p.ptq else {}, "adapters": {} if p.ptq else per_stage,
               "batch_size": refinement["batch_size"], "max_input_tokens": refinement["max_input_tokens"],
               "max_new_tokens": refinement["max_new_tokens"]}
method = snakemake.wildcards.method.split("@")[0]  # `qlora@vllm` refines as `qlora`, on vLLM
refine_variant(method, i.questions, i.retrieval, i.corpus, i.generator, labels, refinement.get("budget_tokens"),
               p.max_context_tokens, snakemake.output.refined, student, snakemake.output.cost, p.warmup_questions)
