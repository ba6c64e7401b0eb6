# Two entry points for a fresh machine (Debian, Python 3.11, no GPU):
#   make run    set up .venv, run the workflow on config.yaml, build results/report.html
#   make test   set up .venv and run the test suite
#   make report rebuild results/report.html (Snakemake's report) from the results
PYTHON ?= python3
VENV := .venv
CORES ?= 2
STAMP := $(VENV)/.installed

.PHONY: run test report setup clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-vllm.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet torch==2.13.0 -r requirements-vllm.txt
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip uninstall --quiet --yes torchvision torchaudio torchcodec
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES)
	$(VENV)/bin/snakemake --cores 1 --report results/report.html

report: $(STAMP)
	$(VENV)/bin/snakemake --cores 1 --report results/report.html

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q --durations=10

clean:
	rm -rf results .snakemake
