from refiner_lib.runtime import setup
from refiner_lib.tasks import HeldOutSelections, quantize_student

setup(snakemake.log[0], snakemake.threads, snakemake.resources.attempt)
i, p = snakemake.input, snakemake.params
held_out = HeldOutSelections(i.records, i.labels, p.held_out_records, p.seed) if i.labels else None
quantize_student(i.model, i.adapter, snakemake.output[0], p.ptq, p.precision, held_out)
