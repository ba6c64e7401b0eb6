"""Which library code a workflow script runs, as one hash.

Snakemake reruns a job when its script changes, but not when a library module
the script calls changes. Each rule therefore carries, as a parameter, a hash
of the code its script reaches: the `tasks` functions it calls (their own
source and the `tasks` helpers they call, not the whole of tasks.py) and every
`refiner_lib` module those reach, followed through their imports. Editing a
module then reruns exactly the rules whose code uses it.
"""
from __future__ import annotations

import ast
import hashlib
import sys
from functools import lru_cache
from pathlib import Path

LIBRARY = Path(__file__).resolve().parent
PACKAGE = LIBRARY.name


def _imported_modules(node: ast.AST) -> dict[str, str]:
    """Names bound by the library imports under node -> the module each comes from."""
    names = {}
    for item in ast.walk(node):
        if not isinstance(item, ast.ImportFrom):
            continue
        relative = item.level == 1 and item.module is None  # from . import x, y
        if relative or item.module == PACKAGE:
            names.update({a.asname or a.name: a.name for a in item.names})
        elif item.level == 1 or (item.module or "").startswith(PACKAGE + "."):
            module = item.module.removeprefix(PACKAGE + ".") if item.level == 0 else item.module
            names.update({a.asname or a.name: module.split(".")[0] for a in item.names})
    return names


def _used_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


@lru_cache(maxsize=None)
def _parsed(module: str) -> tuple[str, ast.Module]:
    source = (LIBRARY / f"{module}.py").read_text()
    return source, ast.parse(source)


def module_closure(module: str, seen: set[str] | None = None) -> set[str]:
    """The module and every library module it imports, transitively."""
    seen = set() if seen is None else seen
    if module in seen or not (LIBRARY / f"{module}.py").exists():
        return seen
    seen.add(module)
    for imported in set(_imported_modules(_parsed(module)[1]).values()):
        module_closure(imported, seen)
    return seen


def _function_sources(module: str, names: set[str]) -> tuple[list[str], set[str]]:
    """Sources of the named top-level functions of a module and the helpers of
    the same module they call; the other library modules they use."""
    source, tree = _parsed(module)
    functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    top_imports = _imported_modules(tree)
    pending, done, sources, modules = sorted(names), set(), [], set()
    while pending:
        name = pending.pop()
        if name in done or name not in functions:
            continue
        done.add(name)
        node = functions[name]
        sources.append(ast.get_source_segment(source, node))
        used = _used_names(node)
        modules |= {top_imports[n] for n in used if n in top_imports}
        modules |= set(_imported_modules(node).values())
        pending += sorted(used & set(functions))
    # module-level constants the functions may read (e.g. column lists)
    sources += [ast.get_source_segment(source, n) for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))]
    return sources, modules


def _reach(script: str | Path) -> tuple[list[str], set[str]]:
    """The sources of the `tasks` functions a script calls, and every library
    module (but `tasks`) the script reaches."""
    tree = ast.parse(Path(script).read_text())
    pieces, modules = [], set()
    for name, module in _imported_modules(tree).items():
        if module == "tasks":
            sources, used = _function_sources("tasks", {name})
            pieces += sources
            modules |= used
        else:
            modules.add(module)
    reached = set()
    for module in modules:
        module_closure(module, reached)
    return pieces, reached - {"tasks"}


@lru_cache(maxsize=None)
def script_code_hash(script: str | Path) -> str:
    """sha256 (16 hex digits) of the library code a workflow script reaches."""
    pieces, reached = _reach(script)
    digest = hashlib.sha256()
    for piece in pieces:
        digest.update(piece.encode())
    for module in sorted(reached):
        digest.update(module.encode() + b"\0" + _parsed(module)[0].encode())
    return digest.hexdigest()[:16]


def _packages_imported(tree: ast.AST) -> set[str]:
    """Top-level names of the packages outside this library that `tree` imports."""
    names = set()
    for item in ast.walk(tree):
        if isinstance(item, ast.Import):
            names |= {a.name.split(".")[0] for a in item.names}
        elif isinstance(item, ast.ImportFrom) and item.level == 0:
            names.add(item.module.split(".")[0])
    return {name for name in names if name != PACKAGE and name not in sys.stdlib_module_names}


def script_packages(script: str | Path) -> set[str]:
    """The packages outside the standard library that a workflow script's code
    may import (at the top of a module or inside a function): what the rule's
    environment must provide."""
    pieces, reached = _reach(script)
    tasks_top = ast.Module(body=[n for n in _parsed("tasks")[1].body if isinstance(n, (ast.Import, ast.ImportFrom))],
                           type_ignores=[])
    trees = [ast.parse(Path(script).read_text()), tasks_top, *map(ast.parse, pieces)]
    trees += [_parsed(module)[1] for module in reached]
    return set().union(*map(_packages_imported, trees))
