from refiner_lib.models import materialize
from refiner_lib.runtime import setup

setup(snakemake.log[0], snakemake.threads)
materialize(snakemake.params.source, snakemake.output[0], snakemake.params.sha256)
