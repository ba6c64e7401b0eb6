"""The conda environments of envs/: each provides every package its rules'
code imports, and its pip part installs into an empty venv in which the rules'
scripts import (conda-forge is not reachable here, so only the pip part is
proved; python=3.11 and pip are all its conda part asks)."""
from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from refiner_lib.provenance import _reach, script_packages

# Imported by some rules' code only on a path the env need not serve.
OPTIONAL = {"vllm": "only with inference.backends [hf, vllm]; README.md's vLLM section installs it"}


def rule_envs() -> dict[str, str]:
    """script name -> the env file its rule names."""
    found = {}
    for smk in (ROOT / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=rule )", smk.read_text()):
            env = re.search(r'conda:\s*\n\s*"\.\./envs/(\w+\.yaml)"', block)
            script = re.search(r'script:\s*\n\s*"\.\./workflow_scripts/(\w+)\.py"', block)
            if env and script:
                found[script.group(1)] = env.group(1)
    return found


def env_packages(env: str) -> dict[str, str]:
    """Normalized distribution name -> pinned version, of an env's pip part."""
    spec = yaml.safe_load((ROOT / "envs" / env).read_text())
    pip_block = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    return dict(normalized_pin(line) for line in pip_block)


def normalized_pin(line: str) -> tuple[str, str]:
    name, _, version = line.partition("==")
    assert version, f"not pinned: {line}"
    return normalized(name), version


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distributions_of(package: str) -> set[str]:
    """The distributions that provide an importable top-level package."""
    return {normalized(d) for d in importlib.metadata.packages_distributions().get(package, [package])}


def test_every_rule_script_has_an_env():
    scripts = {path.stem for path in (ROOT / "workflow_scripts").glob("*.py")}
    assert set(rule_envs()) == scripts


@pytest.mark.parametrize("script, env", sorted(rule_envs().items()))
def test_each_env_provides_what_its_rules_import(script, env):
    """Every package outside the standard library that the script's code may
    import (refiner_lib.provenance follows the tasks functions it calls and the
    library modules they reach) is in the env."""
    provided = set(env_packages(env))
    missing = [package for package in sorted(script_packages(ROOT / "workflow_scripts" / f"{script}.py"))
               if package not in OPTIONAL and not distributions_of(package) & provided]
    assert not missing, f"envs/{env} lacks {missing}, which {script}.py's code imports"


def test_envs_install_nothing_by_a_relative_path():
    """Snakemake builds an env from its own copy of the file: a relative path
    (the old `-e ../`) would point elsewhere."""
    for env in (ROOT / "envs").glob("*.yaml"):
        assert not re.search(r"^\s*-\s*(-e\s|\.|/)", env.read_text(), flags=re.M), env.name


def pip_has_locally(version: str, name: str) -> bool:
    """Whether pip finds the wheel without an index (its local wheels, as set up here)."""
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index",
                             "--ignore-installed", "--quiet", f"{name}=={version}"], capture_output=True)
    return result.returncode == 0


def env_modules(env: str) -> list[str]:
    """The library modules and packages the scripts of an env's rules import."""
    modules = set()
    for script, used_env in rule_envs().items():
        if used_env == env:
            path = ROOT / "workflow_scripts" / f"{script}.py"
            modules |= {f"refiner_lib.{m}" for m in _reach(path)[1]} | (script_packages(path) - set(OPTIONAL))
    return sorted(modules)


@pytest.mark.parametrize("env", sorted({env for env in rule_envs().values()}))
def test_each_env_installs_into_an_empty_venv_and_its_scripts_import(env, tmp_path):
    """The env's pip part in a fresh venv (pip's local wheels and cache; skipped
    where the pinned torch wheel is not to be had without a download), then the
    modules its scripts reach, imported in isolated mode from the workflow's
    folder only: nothing from the project's own venv."""
    packages = env_packages(env)
    if "torch" in packages and not pip_has_locally(packages["torch"], "torch"):
        pytest.skip("the pinned torch wheel is not among pip's local wheels")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    pins = [f"{name}=={version}" for name, version in packages.items()]
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *pins], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr[-3000:]
    imports = "; ".join(f"import {module}" for module in env_modules(env))
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); {imports}"
    result = subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"envs/{env}: {result.stderr[-3000:]}"
