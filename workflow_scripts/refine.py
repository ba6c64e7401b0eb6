from refiner_lib import manifest
from refiner_lib.runtime import setup
from refiner_lib.settings import MethodSettings
from refiner_lib.tasks import refine_variant, refiner_spec

setup(snakemake.log[0], snakemake.threads, snakemake.resources.attempt)
method = snakemake.wildcards.method.split("@")[0]  # `qlora@vllm` refines as `qlora`, on vLLM
files = dict(snakemake.input.items())
spec = refiner_spec(method, MethodSettings.from_dict(snakemake.params.settings), files)
refine_variant(spec, snakemake.input.questions, snakemake.input.generator, snakemake.output.refined)
manifest.write(snakemake.output.manifest, {"method": method, **snakemake.params.settings}, files)
