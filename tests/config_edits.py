"""For the every-key rerun test: each leaf key the schema allows in a config,
a valid new value for it, and the job graph of a dry run (which jobs, their
inputs and outputs), so that the jobs an edit must rerun can be derived from
refiner_lib.config_keys' declaration and compared with what Snakemake plans."""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import yaml

from refiner_lib import config_keys
from refiner_lib.config import SCHEMA, validate


def schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def resolve(node: dict, root: dict) -> dict:
    """A subschema with its `$ref` followed (the schema's refs are local: #/$defs/NAME)."""
    if "$ref" in node:
        target = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return {**resolve(target, root), **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def children(node: dict, value, root: dict) -> dict[str, dict]:
    """name -> subschema of the keys under an object: its declared properties,
    or for a map (`models`, `training.variants`) the names the config uses."""
    if "properties" in node:
        return {name: resolve(sub, root) for name, sub in node["properties"].items()}
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and isinstance(value, dict):
        return {name: resolve(extra, root) for name in value}
    return {}


def leaf_keys(config: dict) -> dict[str, dict]:
    """Every leaf key of the (validated) config and of the schema's optional
    blocks it leaves out, with its subschema: dotted key -> subschema."""
    root = schema()
    leaves: dict[str, dict] = {}

    def walk(node: dict, value, prefix: str) -> None:
        keys = children(node, value, root)
        nullable = "null" in node.get("type", [])
        if not keys or value is None and nullable:  # a null-or-object (a variant's quantization) is a leaf while null
            leaves[prefix] = node
            return
        for name, sub in keys.items():
            walk(sub, value.get(name) if isinstance(value, dict) else None, f"{prefix}.{name}" if prefix else name)

    walk(root, config, "")
    return leaves


def other_value(node: dict, value):
    """A valid value unlike `value`, from the key's schema."""
    if "enum" in node:
        return next(choice for choice in node["enum"] if choice != value)
    kinds = node.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if value is None and "object" in kinds:
        return {"bits": 4}
    if "boolean" in kinds:
        return not value
    if "integer" in kinds:
        return (value or 0) + 1 if node.get("maximum") is None or (value or 0) < node["maximum"] else value - 1
    if "number" in kinds:
        up = round(value + 0.1, 6)
        return up if up <= node.get("maximum", float("inf")) else round(value - 0.1, 6)
    if "array" in kinds and value:
        return value[:-1] if len(value) > 1 else value + value
    if "examples" in node:  # e.g. an empty list, whose items only the schema can suggest
        return next(example for example in node["examples"] if example != value)
    raise ValueError(f"no automatic new value for a {kinds} of value {value!r}")


def set_key(config: dict, key: str, value) -> None:
    *parents, last = key.split(".")
    for part in parents:
        config = config.setdefault(part, {})
    config[last] = value


def edited(config: dict, changes: dict) -> dict:
    new = copy.deepcopy(config)
    for key, value in changes.items():
        set_key(new, key, value)
    return validate(new, "edited config")


@dataclass(frozen=True)
class Output:
    """An output file of a dry run's graph, and the job that writes it."""
    path: str
    rule: str = field(compare=False)
    inputs: frozenset[str] = field(compare=False)
    pending: bool = field(compare=False)  # Snakemake plans to (re)write it
    status: str = field(compare=False, default="ok")

    def __str__(self) -> str:
        return f"{self.path} ({self.rule})"


def summary_outputs(table: str) -> list[Output]:
    """The output files of `snakemake --detailed-summary`, one row each."""
    rows = [line.split("\t") for line in table.splitlines() if line.count("\t") >= 7]
    column = {name: i for i, name in enumerate(rows[0])}
    return [Output(row[column["output_file"]], row[column["rule"]],
                   frozenset(p for p in row[column["input-file(s)"]].split(",") if p and p != "-"),
                   row[column["plan"]] == "update pending", row[column["status"]])
            for row in rows[1:]]


def with_inputs(outputs: list[Output], graph: dict[str, "GraphJob"]) -> list[Output]:
    """The summary gives the inputs a file was made from; where an edit changed
    them, or the file is new, take the inputs of the edited graph instead."""
    return [replace(output, inputs=graph[output.path].inputs) for output in outputs]


def changes_inputs(outputs: list[Output], finished: dict) -> bool:
    return any(o.path not in finished or o.status == "set of input files changed" for o in outputs)


class GraphJob(NamedTuple):
    rule: str
    wildcards: dict
    inputs: frozenset


def dry_run_graph(output: str) -> dict[str, GraphJob]:
    """output file -> its job's wildcards and inputs, from the `rule NAME:`
    blocks of `snakemake --dry-run --forceall`."""
    found = {}
    paths = (lambda text: [p.strip() for p in text.split(",") if p.strip()])
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        head = re.match(r"(?:local)?rule (\w+):", block)
        fields = dict(re.findall(r"^    (\w+): (.*)$", block, flags=re.M))
        if not head:
            continue
        job = GraphJob(head.group(1), dict(p.split("=", 1) for p in paths(fields.get("wildcards", ""))),
                       frozenset(paths(fields.get("input", ""))))
        found.update({path: job for path in paths(fields.get("output", ""))})
    return found


def downstream(outputs: list[Output], starts: set[Output]) -> set[Output]:
    """`starts` and every output made, directly or not, from them."""
    found, frontier = set(starts), list(starts)
    while frontier:
        path = frontier.pop().path
        for output in outputs:
            if output not in found and path in output.inputs:
                found.add(output)
                frontier.append(output)
    return found


def reading_outputs(outputs: list[Output], finished: dict[str, GraphJob], before: dict, after: dict) -> set[Output]:
    """Outputs of the edited graph that are new (the first graph had no such
    file), or whose job's declared part of the config (refiner_lib.config_keys)
    differs between the two configs."""
    return {output for output in outputs if output.path not in finished or
            config_keys.declared(output.rule, before, finished[output.path].wildcards) !=
            config_keys.declared(output.rule, after, finished[output.path].wildcards)}


RULE_ORDER = list(config_keys.READS)


def readers(key: str, config: dict, finished: dict[str, GraphJob]) -> str:
    """The jobs that read `key`, as `rule ×count` in the workflow's order."""
    jobs = {(job.rule, tuple(sorted(job.wildcards.items()))) for job in finished.values()}
    counts: dict[str, int] = {}
    for rule, wildcards in jobs:
        if config_keys.is_read(key, rule, config, dict(wildcards)):
            counts[rule] = counts.get(rule, 0) + 1
    named = ", ".join(f"{rule} ×{counts[rule]}" if counts[rule] > 1 else rule for rule in RULE_ORDER if rule in counts)
    shapes = [what for block, what in config_keys.SHAPES_JOBS.items() if under(key, [block])]
    if shapes:
        named = f"decides {shapes[0]}" + (f"; read by {named}" if named else "")
    if not named and under(key, config_keys.NO_RESULT):
        return "nothing: it changes no result"
    return named or "nothing with this config (refiner_lib/config_keys.py says when it is read)"


def under(key: str, blocks) -> bool:
    return any(config_keys.within(key, block) for block in blocks)


def collapsed(keys: list[str], every: list[str]) -> list[str]:
    """Keys, with a block written `block.*` where all of its leaves are among them."""
    chosen = set(keys)
    shown: list[str] = []
    for key in keys:
        parts = key.split(".")
        top = key
        for depth in range(1, len(parts)):
            block = ".".join(parts[:depth])
            leaves = [k for k in every if k.startswith(block + ".")]
            if len(leaves) > 1 and set(leaves) <= chosen:
                top = block + ".*"
                break
        if top not in shown:
            shown.append(top)
    return shown


def rerun_table(config: dict, finished: dict[str, GraphJob]) -> str:
    """Markdown: each leaf key of `config` (grouped where the same jobs read
    them) and the jobs that read it; an edit reruns those and their descendants."""
    every = list(leaf_keys(config))
    rows: dict[str, list[str]] = {}
    for key in every:
        rows.setdefault(readers(key, config, finished), []).append(key)
    lines = ["| config keys | jobs that read them (each reruns, then what it feeds) |", "|---|---|"]
    for jobs, keys in rows.items():
        lines.append(f"| {', '.join(f'`{k}`' for k in collapsed(keys, every))} | {jobs} |")
    return "\n".join(lines)
