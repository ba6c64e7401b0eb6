# Two entry points for a fresh machine (Debian, Python 3.11, no GPU):
#   make run    set up .venv and run the workflow on config.yaml
#   make test   set up .venv and run the test suite
#   make report after make run: results/report.html (Snakemake's report)
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

report: $(STAMP)
	$(VENV)/bin/snakemake --cores 1 --report results/report.html

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

clean:
	rm -rf results .snakemake
