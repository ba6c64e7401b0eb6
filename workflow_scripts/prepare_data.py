from refiner_lib.data import DatasetSettings
from refiner_lib.runtime import setup
from refiner_lib.tasks import prepare_data

setup(snakemake.log[0])
prepare_data(DatasetSettings.from_dict(snakemake.wildcards.dataset, snakemake.params.dataset),
             snakemake.output.questions, snakemake.input.corpus or None)
