"""Config loading and validation against schemas/config.schema.yaml (for library
users; the Snakefile validates with snakemake.utils.validate against the same
schema). Errors name the offending key path."""
from __future__ import annotations

from pathlib import Path

import yaml

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    pass


def validate(config: dict, source: str = "config") -> dict:
    """Check `config`, fill schema defaults in place, and return it."""
    import jsonschema

    schema = yaml.safe_load(SCHEMA.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator = extend_with_default(validator_class)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigError(f"{source}: key '{key}': {error.message}")
    return config


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
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: malformed YAML ({error})") from None
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


def trained_variant(config: dict, variant: str) -> str:
    """The variant whose adapter `variant` uses: the first one in the config with
    the same training-time quantization. A PTQ variant thus quantizes exactly the
    adapter its full-precision sibling trained, not a retrained copy."""
    variants = config["training"]["variants"]
    wanted = variants[variant]["quantization"]
    trained = [name for name, settings in variants.items()
               if settings["quantization"] == wanted and not settings.get("ptq")]
    return trained[0] if trained else variant
