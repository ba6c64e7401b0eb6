from refiner_lib.runtime import setup
from refiner_lib.tasks import split_questions

setup(snakemake.log[0])
# The other part's size only checks that both fit, so it comes from the config,
# not params: changing it must not rerun this part.
sizes = snakemake.config["datasets"][snakemake.wildcards.dataset]["split"]
split_questions(snakemake.input[0], snakemake.wildcards.split, sizes["num_train"], sizes["num_eval"],
                snakemake.params.seed, snakemake.output[0])
