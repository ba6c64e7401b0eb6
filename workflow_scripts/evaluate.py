from refiner_lib.runtime import setup
from refiner_lib.tasks import evaluate

setup(snakemake.log[0])
i = snakemake.input
evaluate(snakemake.wildcards.method, i.questions, i.refined, i.answers, i.query_labels or None, snakemake.output[0],
         i.refine_cost, i.generate_cost)
