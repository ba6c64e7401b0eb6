"""Config loading and validation against schemas/config.schema.yaml, for the
Snakefile and for library users alike. Errors name the file and the offending
key path (a YAML syntax error: the line and column)."""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import yaml

from .errors import ConfigError

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"


def validate(config: dict, source: str = "config") -> dict:
    """Check `config`, fill schema defaults in place, and return it."""
    import jsonschema

    validator = schema_validator()
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        error = jsonschema.exceptions.best_match([errors[0]])  # descends into the branch that failed
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigError(f"{source}: key '{key}': {error.message}")
    check_references(config, source)
    return config


# methods that train nothing: the whole retrieved text, and refinement's ablations (refiner.py)
BASELINES = ("full", "local_only", "selection_only", "teacher")
# stages whose trained (and post-training quantized) students are calibrated on the records training held out
CALIBRATED_STAGES = ("query_analysis", "global_selection")


def check_references(config: dict, source: str) -> None:
    """What the schema cannot say: each role names a model of `models`, and no
    variant takes a baseline's name."""
    for role, model in config["roles"].items():
        if model not in config["models"]:
            raise ConfigError(f"{source}: key 'roles.{role}': model '{model}' is not in 'models' "
                              f"(it has {', '.join(config['models'])})")
    clashes = sorted(set(BASELINES) & set(config["training"]["variants"]))
    if clashes:
        raise ConfigError(f"{source}: key 'training.variants': {', '.join(clashes)} is the name of a baseline")
    for name, block in config["datasets"].items():
        check_dataset(name, block, source)


def check_dataset(name: str, block: dict, source: str) -> None:
    """A dataset names the files its layout reads, and the oracle teacher only
    where the layout carries its annotations."""
    from .data import ANNOTATED, needed_files

    layout = block["layout"]
    for field in needed_files(layout):
        if not block.get(field):
            raise ConfigError(f"{source}: key 'datasets.{name}.{field}': missing (layout {layout} reads it)")
    if block.get("teacher") == "oracle" and layout not in ANNOTATED:
        raise ConfigError(f"{source}: key 'datasets.{name}.teacher': the oracle labels from annotations, which "
                          f"layout {layout} does not have (only {', '.join(ANNOTATED)}); use llm")


def uses_llm_teacher(config: dict) -> bool:
    from .data import teacher_kind

    return any(teacher_kind(block, config["teacher"]["kind"]) == "llm" for block in config["datasets"].values())


def check_local_folders(config: dict, source: str) -> None:
    """The local folders the run reads (role models, an LLM teacher's adapters)
    exist, so that a wrong path stops the run before any job, and before any
    model job could be retried in vain."""
    folders = {f"models.{model}.source": config["models"][model]["source"] for model in set(config["roles"].values())}
    if uses_llm_teacher(config):
        folders.update({f"teacher.adapters.{stage}": path for stage, path in config["teacher"]["adapters"].items()
                        if path})
    for key, path in folders.items():
        if path.startswith(("hf:", "pypi:")):
            continue
        if not Path(path).is_dir():
            raise ConfigError(f"{source}: key '{key}': no such folder '{path}'")
        if key.startswith("teacher.") and not (Path(path) / "adapter_config.json").exists():
            raise ConfigError(f"{source}: key '{key}': '{path}' is not a PEFT adapter (no adapter_config.json)")


def check_yaml(path: str | Path) -> None:
    """Parse a YAML file only to name the line and column of a syntax error."""
    read_yaml(Path(path))


def read_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except UnicodeDecodeError as error:
        line = error.object[:error.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{error.object[error.start]:02x})") from None
    except RecursionError:
        raise ConfigError(f"{path}: malformed YAML (nested too deeply)") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        place = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{path}{place}: malformed YAML ({problem})") from None


@functools.lru_cache(maxsize=1)
def schema_validator():
    """Built once per process: parsing the schema costs more than a validation."""
    import jsonschema

    schema = yaml.safe_load(SCHEMA.read_text())
    return extend_with_default(jsonschema.validators.validator_for(schema))(schema)


def extend_with_default(validator_class):
    """A validator that also writes each property's `default` into the instance."""
    import jsonschema

    set_properties = validator_class.VALIDATORS["properties"]

    def fill_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if isinstance(subschema, dict) and "default" in subschema:
                    instance.setdefault(name, subschema["default"])
        yield from set_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": fill_defaults})


def load(path: str | Path) -> dict:
    path = Path(path)
    config = read_yaml(path)
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return validate(config, str(path))


def resolved_training(config: dict, stage: str, variant: str) -> dict:
    """Everything that decides a (stage, variant) student: one shared block for
    data, LoRA and schedule; the variant adds only its quantization fields
    (`quantization` while training, `ptq` after it)."""
    settings = config["training"]["variants"][variant]
    return {"stage": stage, "records": f"teacher/{stage}/train.json", "base_model": config["roles"]["student"],
            "lora": config["training"]["lora"], "schedule": config["training"]["schedule"], "seed": config["seed"],
            "quantization": settings["quantization"], "ptq": settings.get("ptq")}


def objective(config: dict, stage: str) -> dict:
    """sft, or kd with its temperature and weight: the training settings a stage's objective decides."""
    if config["training"]["objective"][stage] == "kd":
        return {"kind": "kd", **config["training"]["distillation"]}
    return {"kind": "sft"}


def student_training(config: dict, stage: str, variant: str) -> dict:
    """A (stage, variant) student's settings.TrainingSettings as plain values:
    what train_student runs with, and what the training benchmark times."""
    training = config["training"]
    return {"lora": training["lora"], "schedule": training["schedule"], "validation": training["validation"],
            "quantization": training["variants"][variant]["quantization"],
            "objective": objective(config, stage), "seed": config["seed"], "precision": config["precision"]}


def trained_variant(config: dict, variant: str) -> str:
    """The variant whose adapter `variant` uses: the first one in the config with
    the same training-time quantization. A PTQ variant thus quantizes exactly the
    adapter its full-precision sibling trained, not a retrained copy."""
    variants = config["training"]["variants"]
    wanted = variants[variant]["quantization"]
    trained = [name for name, settings in variants.items()
               if settings["quantization"] == wanted and not settings.get("ptq")]
    return trained[0] if trained else variant


def main(paths: list[str]) -> int:
    """`python -m refiner_lib.config FILE...`: check config files as the workflow
    will (Snakemake itself names no line for a YAML error in a --configfile)."""
    for path in paths:
        try:
            config = load(path)
            check_local_folders(config, path)
        except ConfigError as error:
            print(error, file=sys.stderr)
            return 1
        print(f"{path}: valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
