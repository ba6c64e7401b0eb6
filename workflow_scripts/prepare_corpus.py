from refiner_lib.data import CorpusSettings
from refiner_lib.runtime import setup
from refiner_lib.tasks import prepare_corpus

setup(snakemake.log[0])
prepare_corpus(CorpusSettings.from_dict(snakemake.params.source), snakemake.output.corpus, snakemake.output.trees)
