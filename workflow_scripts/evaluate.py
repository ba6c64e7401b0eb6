from refiner_lib.runtime import setup
from refiner_lib.tasks import evaluate

setup(snakemake.log[0])
evaluate(snakemake.wildcards.method, dict(snakemake.input.items()), snakemake.output[0], snakemake.params.metrics,
         snakemake.wildcards.dataset)
