"""The workflow's layout: every rule logged and benchmarked, envs pinned like
requirements.txt, and the library free of Snakemake."""
import ast
import re

import yaml

from conftest import ROOT


def pins(lines):
    return dict(re.match(r"^\s*-?\s*([A-Za-z0-9_.\-]+)==([^\s]+)", line).groups()
                for line in lines if re.match(r"^\s*-?\s*[A-Za-z0-9_.\-]+==", line))


def test_every_env_pin_matches_requirements():
    required = pins((ROOT / "requirements.txt").read_text().splitlines())
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        spec = yaml.safe_load(env.read_text())
        pip_block = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
        for name, version in pins(pip_block).items():
            assert required.get(name) == version, f"{env.name}: {name}=={version} vs requirements.txt"


def test_every_rule_has_log_benchmark_and_env():
    for smk in (ROOT / "rules").glob("*.smk"):
        text = smk.read_text()
        for block in re.split(r"\n(?=rule )", text)[1:] if not text.startswith("rule ") else re.split(r"\n(?=rule )", text):
            name = block.split(":")[0].split()[-1]
            for directive in ("log:", "benchmark:", "conda:", "script:"):
                assert directive in block, f"{smk.name}: rule {name} has no {directive}"


def test_library_does_not_import_snakemake():
    for module in (ROOT / "refiner_lib").glob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+snakemake", module.read_text(), re.M), module.name


# rules that run no model: their scripts must start without torch (1.7 s per job)
LIGHT_SCRIPTS = ["prepare_data", "split_questions", "build_bm25_index", "retrieve", "teacher_query_analysis",
                 "teacher_doc_structuring", "teacher_global_selection", "evaluate", "summarize", "plot_results"]


def test_light_steps_do_not_import_torch():
    import subprocess
    import sys

    for script in LIGHT_SCRIPTS:
        source = (ROOT / "workflow_scripts" / f"{script}.py").read_text()
        imports = "\n".join(line for line in source.splitlines() if re.match(r"(from|import) refiner_lib", line))
        assert imports, script
        probe = f"import sys\n{imports}\nfrom refiner_lib.runtime import setup\nsetup(None, 1)\n" \
                "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
        loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
        assert loaded.stdout.strip() == "[]", f"{script}.py imports {loaded.stdout.strip()}"


def library_imports() -> dict[str, set[str]]:
    """module -> the refiner_lib modules it imports (at any depth in its code)."""
    modules = {path.stem: path for path in (ROOT / "refiner_lib").glob("*.py")}
    graph = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                imported |= {node.module.split(".")[0]} if node.module else {alias.name for alias in node.names}
        graph[name] = imported & set(modules)
    return graph


def test_the_library_has_no_import_cycle():
    graph = library_imports()
    finished, path, cycles = set(), [], []

    def visit(module):
        if module in path:
            cycles.append(path[path.index(module):] + [module])
        elif module not in finished:
            path.append(module)
            for imported in sorted(graph[module]):
                visit(imported)
            path.pop()
            finished.add(module)

    for module in sorted(graph):
        visit(module)
    assert cycles == []
    assert "backend" in graph["vllm_backend"] or "inference" in graph["vllm_backend"]  # the walk sees imports
