"""No library function takes more than six parameters besides settings objects:
settings travel as typed objects (refiner_lib.settings and its kin), not as long
positional lists (issue "One shape for settings and steps")."""
import ast

from conftest import ROOT

MAX_PARAMETERS = 6
# a parameter annotated with one of these is a settings object, not counted
SETTINGS_TYPES = {"LoraSettings", "Schedule", "Objective", "Validation", "TrainingSettings", "TrainingOutputs",
                  "BackendLimits", "BM25Params", "SyntheticSettings", "TimingSettings", "RefinerSpec", "StudentModels",
                  "Workload", "BackendSettings", "GenerationSettings", "TeacherSettings", "RefinementSettings",
                  "MethodSettings", "Quantization", "DatasetSettings"}


def annotation_names(argument: ast.arg) -> set[str]:
    if argument.annotation is None:
        return set()
    return {node.id if isinstance(node, ast.Name) else node.attr
            for node in ast.walk(argument.annotation) if isinstance(node, (ast.Name, ast.Attribute))}


def long_signatures(paths) -> list[str]:
    found = []
    for path in sorted(paths):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            counted = [a.arg for a in arguments
                       if a.arg not in ("self", "cls") and not annotation_names(a) & SETTINGS_TYPES]
            if len(counted) > MAX_PARAMETERS:
                found.append(f"{path.name}:{node.lineno} {node.name}({', '.join(counted)})")
    return found


def test_no_library_function_takes_more_than_six_parameters_besides_settings():
    assert long_signatures((ROOT / "refiner_lib").glob("*.py")) == []


def test_the_check_finds_a_long_signature(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("def long(a, b, c, d, e, f, g):\n    pass\n\n\n"
                      "def typed(a, b, c, d, e, f, g: TrainingSettings):\n    pass\n\n\n"
                      "class Thing:\n    def method(self, a, b, c, d, e, f):\n        pass\n")
    assert long_signatures([module]) == ["module.py:1 long(a, b, c, d, e, f, g)"]
