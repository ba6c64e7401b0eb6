from refiner_lib.runtime import setup
from refiner_lib.tasks import prepare_data

setup(snakemake.log[0])
out = snakemake.output
prepare_data(snakemake.params.data, snakemake.params.seed, out.train, out.eval, out.corpus, out.trees)
