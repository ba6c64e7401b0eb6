from refiner_lib.data import DataSettings
from refiner_lib.runtime import setup
from refiner_lib.tasks import prepare_data

setup(snakemake.log[0])
out = snakemake.output
prepare_data(DataSettings.from_dict(snakemake.params.data), out.questions, out.corpus, out.trees)
