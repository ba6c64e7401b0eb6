from pathlib import Path

from refiner_lib.runtime import setup
from refiner_lib.tasks import train

setup(snakemake.log[0], snakemake.threads, snakemake.resources.attempt)
p, o = snakemake.params, snakemake.output
# How often to checkpoint changes no result, so it is read from the config, not
# carried in params (a change must not rerun training).
every = snakemake.config["training"]["checkpoint_every_steps"]
train(snakemake.input.model, snakemake.input.records, o.adapter, o.loss, o.metrics, p.lora, p.schedule, p.validation,
      p.quantization, p.seed, Path(o.adapter).parent / "checkpoint", every, p.objective, snakemake.wildcards.stage,
      snakemake.input.labels or None, p.precision)
