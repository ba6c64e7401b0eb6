from refiner_lib.runtime import setup
from refiner_lib.settings import TeacherSettings
from refiner_lib.tasks import teacher_global_selection

setup(snakemake.log[0], snakemake.threads, snakemake.resources.attempt)
teacher_global_selection(TeacherSettings(**snakemake.params.teacher), dict(snakemake.input.items()),
                         dict(snakemake.output.items()))
