from pathlib import Path

from refiner_lib.runtime import setup
from refiner_lib.settings import TrainingOutputs, TrainingSettings
from refiner_lib.tasks import train

setup(snakemake.log[0], snakemake.threads, snakemake.resources.attempt)
o = snakemake.output
# How often to checkpoint or log, and where else to report, change no result, so
# they are read from the config, not carried in params (a change must not rerun training).
outputs = TrainingOutputs(Path(o.adapter), Path(o.loss), Path(o.metrics), Path(o.adapter).parent / "checkpoint",
                          snakemake.config["training"]["checkpoint_every_steps"], Path(o.tensorboard),
                          snakemake.config["training"]["log_every_steps"],
                          tuple(snakemake.config["training"]["report_to"]))
train(dict(snakemake.input.items()), outputs, TrainingSettings.from_dict(snakemake.params.settings),
      snakemake.wildcards.stage, snakemake.threads)
