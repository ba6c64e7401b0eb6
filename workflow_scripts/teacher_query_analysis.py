from refiner_lib.runtime import setup
from refiner_lib.settings import TeacherSettings
from refiner_lib.tasks import teacher_query_analysis

setup(snakemake.log[0], snakemake.threads, snakemake.resources.attempt)
teacher_query_analysis(TeacherSettings(**snakemake.params.teacher), dict(snakemake.input.items()),
                       dict(snakemake.output.items()))
