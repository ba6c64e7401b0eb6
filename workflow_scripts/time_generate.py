from refiner_lib.measure import TimingSettings
from refiner_lib.runtime import setup
from refiner_lib.settings import BackendSettings, GenerationSettings
from refiner_lib.tasks import time_generation

setup(snakemake.log[0], snakemake.threads, snakemake.resources.attempt)
i, p = snakemake.input, snakemake.params
time_generation(dict(zip(p.methods, i.refined)), dict(i.items()), GenerationSettings(**p.generation),
                TimingSettings(**p.timing), snakemake.output[0], BackendSettings(**p.backend))
