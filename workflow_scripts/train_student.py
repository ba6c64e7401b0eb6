from refiner_lib.runtime import setup
from refiner_lib.tasks import train

setup(snakemake.log[0], snakemake.threads)
p, o = snakemake.params, snakemake.output
train(snakemake.input.model, snakemake.input.records, o.adapter, o.loss, o.metrics, p.lora, p.schedule, p.validation,
      p.quantization, p.seed)
