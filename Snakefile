# longrefiner-quant: distill LongRefiner's refinement stages into small LoRA /
# QLoRA students and measure what each training paradigm costs and keeps.
# Run: snakemake --cores 2  (see README.md)
from snakemake.utils import min_version

from refiner_lib import config as config_checks
from refiner_lib.runtime import jobs_import_from

min_version("9.0")

# Every job imports this workflow's own refiner_lib, in the venv as in a conda
# environment (--sdm conda) or on a cluster node, whether or not one is installed.
jobs_import_from(workflow.basedir)


# A config given with --configfile replaces config.yaml instead of being merged
# into it: a user's file naming only `lora` must not inherit the other variants.
# (--config KEY=VALUE still edits single keys of whichever file is used.)
if not workflow.overwrite_configfiles:
    config_checks.check_yaml("config.yaml")  # snakemake's own YAML error names no line

    configfile: "config.yaml"


# the schema (with its defaults), then what a schema cannot say: roles name
# models, and the local folders it names exist
CONFIG_SOURCE = ", ".join(map(str, workflow.configfiles)) or "--config"
config_checks.validate(config, CONFIG_SOURCE)
config_checks.check_local_folders(config, CONFIG_SOURCE)


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
