from refiner_lib.measure import TimingSettings
from refiner_lib.runtime import setup
from refiner_lib.settings import MethodSettings
from refiner_lib.tasks import time_refiners

setup(snakemake.log[0], snakemake.threads, snakemake.resources.attempt)
i, p = snakemake.input, snakemake.params
inputs = dict(i.items())
shared = {key: inputs[key] for key in ("questions", "retrieval", "corpus", "generator", "student") if inputs.get(key)}
refiners = {method: (MethodSettings.from_dict(p.settings[method]), {**shared, **files})
            for method, files in p.files.items()}
time_refiners(refiners, i.questions, i.generator, TimingSettings(**p.timing), snakemake.output[0])
