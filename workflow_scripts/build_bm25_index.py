from refiner_lib.bm25 import BM25Params
from refiner_lib.runtime import setup
from refiner_lib.tasks import build_index

setup(snakemake.log[0])
build_index(snakemake.input.corpus, snakemake.output.index, BM25Params(**snakemake.params.bm25))
