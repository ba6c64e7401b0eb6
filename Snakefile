# longrefiner-quant: distill LongRefiner's refinement stages into small LoRA /
# QLoRA students and measure what each training paradigm costs and keeps.
# Run: snakemake --cores 2  (see README.md)
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml", set_default=True)


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/data.smk"
include: "rules/retrieval.smk"
include: "rules/teacher.smk"
include: "rules/training.smk"
include: "rules/refinement.smk"
include: "rules/evaluation.smk"


rule all:
    input:
        f"{RESULTS}/summary.csv",
        f"{RESULTS}/summary.md",
        rules.plot_results.output,
    default_target: True
