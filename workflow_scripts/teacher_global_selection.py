from refiner_lib.runtime import setup
from refiner_lib.tasks import teacher_global_selection

setup(snakemake.log[0], snakemake.threads, snakemake.resources.attempt)
i, o = snakemake.input, snakemake.output
teacher_global_selection(snakemake.params.teacher, i.questions, i.retrieval, i.structure, i.model or None,
                         o.records, o.labels)
