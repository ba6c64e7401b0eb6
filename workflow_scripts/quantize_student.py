from refiner_lib.quantize import merge_and_quantize
from refiner_lib.runtime import setup

setup(snakemake.log[0], snakemake.threads)
p = snakemake.params
merge_and_quantize(snakemake.input.model, snakemake.input.adapter, snakemake.output[0], p.ptq, p.precision)
