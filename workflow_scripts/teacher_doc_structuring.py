from refiner_lib.runtime import setup
from refiner_lib.tasks import teacher_doc_structuring

setup(snakemake.log[0], snakemake.threads, snakemake.resources.attempt)
i, o = snakemake.input, snakemake.output
teacher_doc_structuring(snakemake.params.teacher, i.questions, i.retrieval, i.corpus, i.trees, i.model or None,
                        o.records, o.labels)
