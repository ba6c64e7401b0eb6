from refiner_lib.runtime import setup
from refiner_lib.tasks import summarize

setup(snakemake.log[0])
summarize(list(snakemake.input.metrics), list(snakemake.input.training), dict(snakemake.output.items()))
