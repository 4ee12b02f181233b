"""Run the real `lm_eval` CLI in a subprocess and read what it wrote."""

import json
import os
import subprocess
import sys
from pathlib import Path


def run_lm_eval(args: list[str], output: Path, python: str = sys.executable, env: dict | None = None, cwd=None):
    """``python -m lm_eval run ARGS --output_path OUTPUT --log_samples``; returns the CompletedProcess."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    environment.update(env or {})
    command = [python, "-m", "lm_eval", "run", *args, "--output_path", str(output), "--log_samples"]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900, cwd=cwd)
    assert result.returncode == 0, f"lm_eval failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return result


def read_results(output: Path) -> tuple[dict, dict[str, list[dict]]]:
    """The results JSON and the logged samples per task of the one run under ``output``."""
    results_file = next(output.rglob("results_*.json"))
    results = json.loads(results_file.read_text())
    samples = {}
    for path in results_file.parent.glob("samples_*.jsonl"):
        task = path.name[len("samples_") :].rsplit("_", 1)[0]
        samples[task] = [json.loads(line) for line in path.read_text().splitlines()]
    return results, samples


def printed_value(stdout: str, name: str, metric: str) -> float:
    """The value lm-eval's printed table shows for ``name``'s ``metric`` (the row below the name counts too)."""
    current = None
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 7:
            continue
        if cells[0]:
            current = cells[0].lstrip("- ").strip()
        if current == name and cells[4] == metric:
            return float(cells[6])
    raise AssertionError(f"{name} {metric} not in the printed table:\n{stdout}")
