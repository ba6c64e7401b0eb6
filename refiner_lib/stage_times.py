"""Wall time and peak memory per rule, from the workflow's benchmark files.

    python -m refiner_lib.stage_times results
"""
from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path


def read_benchmarks(results: str | Path) -> dict[str, list[dict]]:
    """rule name -> one row per job: {job, seconds, max_rss_mb}."""
    root = Path(results) / "benchmarks"
    per_rule: dict[str, list[dict]] = defaultdict(list)
    for path in sorted(root.rglob("*.tsv")):
        parts = path.relative_to(root).with_suffix("").parts
        with path.open() as handle:
            row = list(csv.DictReader(handle, delimiter="\t"))[-1]
        max_rss = row["max_rss"]
        per_rule[parts[0]].append({"job": "/".join(parts[1:]) or parts[0], "seconds": float(row["s"]),
                                   "max_rss_mb": float(max_rss) if max_rss not in ("", "NA", "-") else None})
    return per_rule


def table(results: str | Path) -> str:
    lines = ["| rule | jobs | wall s (sum) | slowest job | peak RSS MB |", "|---|---|---|---|---|"]
    total = 0.0
    for rule, jobs in read_benchmarks(results).items():
        seconds = sum(j["seconds"] for j in jobs)
        total += seconds
        slowest = max(jobs, key=lambda j: j["seconds"])
        peak = max((j["max_rss_mb"] or 0) for j in jobs)
        lines.append(f"| {rule} | {len(jobs)} | {seconds:.1f} | {slowest['job']} {slowest['seconds']:.1f} s | {peak:.0f} |")
    lines.append(f"| all (sum of job times) | | {total:.1f} | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(sys.argv[1] if len(sys.argv) > 1 else "results"))
