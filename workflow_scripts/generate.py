from refiner_lib import manifest
from refiner_lib.runtime import setup
from refiner_lib.settings import BackendSettings, GenerationSettings
from refiner_lib.tasks import generate_answers

setup(snakemake.log[0], snakemake.threads, snakemake.resources.attempt)
i, p = snakemake.input, snakemake.params
generate_answers(i.refined, i.questions, i.generator, GenerationSettings(**p.generation), snakemake.output.answers,
                 BackendSettings(**p.backend))
manifest.write(snakemake.output.manifest, {"generation": p.generation, "backend": p.backend}, dict(i.items()))
