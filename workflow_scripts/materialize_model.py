from refiner_lib.runtime import setup
from refiner_lib.tasks import materialize_model

setup(snakemake.log[0], snakemake.threads)
p = snakemake.params
materialize_model(p.source, snakemake.output[0], p.sha256, p.trust_remote_code)
