from refiner_lib.runtime import setup
from refiner_lib.tasks import train

setup(snakemake.log[0], snakemake.threads)
p = snakemake.params
train(snakemake.input.model, snakemake.input.records, snakemake.output.adapter, snakemake.output.loss,
      p.lora, p.schedule, p.quantization, p.seed)
