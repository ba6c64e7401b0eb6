from refiner_lib.plots import loss_plot, quality_plot, read_rows, tradeoff_plot
from refiner_lib.runtime import setup

setup(snakemake.log[0])
rows, out = read_rows(snakemake.input.summary), snakemake.output
for cost in ("latency", "memory", "flops"):
    tradeoff_plot(rows, cost, out[cost])
quality_plot(rows, out.quality)
loss_plot(list(snakemake.input.losses), out.losses)
