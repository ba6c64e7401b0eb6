from refiner_lib.runtime import setup
from refiner_lib.tasks import plot_results

setup(snakemake.log[0])
plot_results(snakemake.input.summary, snakemake.input.losses, dict(snakemake.output.items()))
