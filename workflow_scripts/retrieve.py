from refiner_lib.runtime import setup
from refiner_lib.tasks import retrieve

setup(snakemake.log[0])
retrieve(snakemake.input.index, snakemake.input.questions, snakemake.output[0], snakemake.params.top_k)
