from refiner_lib.runtime import setup
from refiner_lib.tasks import merge_training_records

setup(snakemake.log[0])
merge_training_records(list(zip(snakemake.input.records, snakemake.input.labels)), snakemake.output.records,
                       snakemake.output.labels)
