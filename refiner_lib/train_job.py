"""One process of a data-parallel training job (launch.py starts it under
torchrun): `python -m refiner_lib.train_job JOB.json`, where the JSON holds
the job's inputs, outputs, settings and stage as tasks.train takes them."""
import logging
import sys

from .jsonl import read_json
from .settings import TrainingOutputs, TrainingSettings
from .tasks import train


def main(job_file: str) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    job = read_json(job_file)
    train(job["inputs"], TrainingOutputs.from_dict(job["outputs"]), TrainingSettings.from_dict(job["settings"]),
          job["stage"])


if __name__ == "__main__":
    main(sys.argv[1])
