from refiner_lib.measure import TimingSettings
from refiner_lib.runtime import setup
from refiner_lib.settings import MethodSettings
from refiner_lib.tasks import refiner_spec, time_refinement

setup(snakemake.log[0], snakemake.threads, snakemake.resources.attempt)
method = snakemake.wildcards.method.split("@")[0]
spec = refiner_spec(method, MethodSettings.from_dict(snakemake.params.settings), dict(snakemake.input.items()))
time_refinement(spec, snakemake.input.questions, snakemake.input.generator, TimingSettings(**snakemake.params.timing),
                snakemake.output[0])
