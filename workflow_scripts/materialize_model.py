from refiner_lib.runtime import setup
from refiner_lib.tasks import materialize_model

setup(snakemake.log[0], snakemake.threads)
model = snakemake.params.model
materialize_model(model["source"], snakemake.output[0], model.get("sha256"), model["trust_remote_code"])
