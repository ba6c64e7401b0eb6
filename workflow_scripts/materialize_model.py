from refiner_lib.models import materialize
from refiner_lib.runtime import setup

setup(snakemake.log[0], snakemake.threads)
p = snakemake.params
materialize(p.source, snakemake.output[0], p.sha256, p.trust_remote_code)
