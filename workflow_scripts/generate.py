from refiner_lib.runtime import setup
from refiner_lib.tasks import generate_answers

setup(snakemake.log[0], snakemake.threads)
g, p = snakemake.params.generation, snakemake.params
# the prompt holds the context plus the instruction and question: leave room for them
generate_answers(snakemake.input.refined, snakemake.input.questions, snakemake.input.generator, g["max_new_tokens"],
                 g["batch_size"], g["max_context_tokens"] + 256, snakemake.output.answers, snakemake.output.cost,
                 p.warmup_questions, p.backend)
