from refiner_lib.runtime import setup
from refiner_lib.settings import TeacherSettings
from refiner_lib.tasks import teacher_doc_structuring

setup(snakemake.log[0], snakemake.threads, snakemake.resources.attempt)
teacher_doc_structuring(TeacherSettings(**snakemake.params.teacher), dict(snakemake.input.items()),
                        dict(snakemake.output.items()))
