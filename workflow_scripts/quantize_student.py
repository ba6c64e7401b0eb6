from refiner_lib.runtime import setup
from refiner_lib.settings import Quantization
from refiner_lib.tasks import HeldOutRecords, quantize_student

setup(snakemake.log[0], snakemake.threads, snakemake.resources.attempt)
i, p = snakemake.input, snakemake.params
held_out = (HeldOutRecords(snakemake.wildcards.stage, i.records, i.labels, p.held_out["records"], p.held_out["seed"])
            if p.held_out else None)
quantize_student(i.model, i.adapter, snakemake.output[0], Quantization(**p.ptq), p.precision, held_out)
