from refiner_lib.runtime import setup
from refiner_lib.tasks import teacher_query_analysis

setup(snakemake.log[0], snakemake.threads, snakemake.resources.attempt)
i, o = snakemake.input, snakemake.output
teacher_query_analysis(snakemake.params.teacher, i.questions, i.model or None, o.records, o.labels)
