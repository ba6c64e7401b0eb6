from refiner_lib.runtime import setup
from refiner_lib.settings import MethodSettings
from refiner_lib.tasks import refine_variant, refiner_spec

setup(snakemake.log[0], snakemake.threads, snakemake.resources.attempt)
method = snakemake.wildcards.method.split("@")[0]  # `qlora@vllm` refines as `qlora`, on vLLM
spec = refiner_spec(method, MethodSettings.from_dict(snakemake.params.settings), dict(snakemake.input.items()))
refine_variant(spec, snakemake.input.questions, snakemake.input.generator, snakemake.output[0])
