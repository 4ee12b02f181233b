"""Read what ``lm_eval ... --output_path OUT --log_samples`` wrote, keeping only what the report needs.

lm-eval writes ``OUT/<model>/results_<timestamp>.json`` and, per task,
``samples_<task>_<timestamp>.jsonl`` (same timestamp): one run. Each sample line
carries the prompt and every raw response (32 of ~1,000 tokens each for a ``_maj``
task, so hundreds of MB per run); the report needs only the question id, its
``meta`` (MedQA step, JAMA field), the per-sample metric values and, for free-form
grading, the small ``filtered_resps``. ``_parse_sample`` therefore cuts the
``arguments``/``resps`` span out of the line before parsing it (see there why
that is safe) and the rest is parsed with the stdlib ``json``.
"""

from __future__ import annotations

import ast
import json
import mmap
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lm_eval_medreason.data import registry
from lm_eval_medreason.errors import ReportError

if TYPE_CHECKING:
    import numpy as np

# numpy is imported where arrays are built, so that reading this module costs little.

# From the registry: the study's benchmarks first (Table 1 order), then the others.
STUDY_BENCHMARKS = registry.study_benchmarks()
BENCHMARKS = tuple(registry.BENCHMARKS)
STRATEGIES = tuple(registry.STRATEGIES)
# How tables and figures name each benchmark.
TITLES = {name: benchmark.title for name, benchmark in registry.BENCHMARKS.items()}
FILTERS = ("final-answer", "graded")  # multiple choice, free-form
_TASK = re.compile(rf"^({'|'.join(sorted(BENCHMARKS, key=len, reverse=True))})_({'|'.join(STRATEGIES)})(_maj)?$")
_MAJ_KEY = re.compile(r"^maj@(\d+)$")


def parse_task(name: str) -> tuple[str, str, bool] | None:
    """``medqa_cot_maj`` -> ("medqa", "cot", True); None for a task that is not one of ours."""
    match = _TASK.match(name)
    return (match[1], match[2], bool(match[3])) if match else None


@dataclass
class TaskSamples:
    """One task of one run: per-question ids, metric values (NaN where the log has null) and difficulty meta."""

    task: str
    benchmark: str
    strategy: str
    maj: bool
    ids: list[str]
    metrics: dict[str, np.ndarray]
    meta: list[dict]
    grading: list[dict] | None = None  # free-form only: correct, matcher_correct, grader, judge_error
    path: Path | None = None  # the samples log (the HTML page reads the responses from it)

    @property
    def maj_ks(self) -> list[int]:
        return sorted(int(m[1]) for m in map(_MAJ_KEY.match, self.metrics) if m)


@dataclass
class Run:
    """One results_<timestamp>.json and the samples of its (our) tasks."""

    results_file: Path
    model: str
    timestamp: str
    tasks: dict[str, TaskSamples] = field(default_factory=dict)
    results: dict = field(default_factory=dict)  # lm-eval's "results" section, for cross-checks
    notes: list[str] = field(default_factory=list)


def find_results_files(paths: list[Path]) -> list[Path]:
    """Every results_*.json under the given folders (or the files themselves), each once."""
    found: dict[Path, None] = {}
    for path in map(Path, paths):
        if not path.exists():
            raise ReportError(f"{path}: no such file or folder")
        files = [path] if path.is_file() else sorted(path.rglob("results_*.json"))
        if not files:
            raise ReportError(
                f"{path}: no lm-eval results (results_*.json) in this folder; "
                "point at the --output_path of an `lm_eval ... --log_samples` run"
            )
        for file in files:
            found[file.resolve()] = None
    return list(found)


def model_name(results: dict, folder: Path) -> str:
    """The model as Table 1 names it: model_args' pretrained/model (+ the PEFT adapter), else lm-eval's model_name, else the folder."""
    args = (results.get("config") or {}).get("model_args") or {}
    if isinstance(args, str):  # older lm-eval: "pretrained=x,peft=y"
        args = dict(part.split("=", 1) for part in args.split(",") if "=" in part)
    base = next((str(args[k]) for k in ("pretrained", "model", "path", "engine") if args.get(k)), None)
    adapter = next((str(args[k]) for k in ("peft", "delta") if args.get(k)), None)
    if base and adapter:
        return f"{base}+{adapter}"
    return base or adapter or results.get("model_name") or folder.name


def load_run(results_file: Path) -> Run:
    """Read one results file and the samples of every medreason task in it; other tasks give a note."""
    try:
        results = json.loads(results_file.read_bytes())
    except (OSError, ValueError) as err:
        raise ReportError(f"{results_file}: cannot read lm-eval results JSON ({err})") from None
    if not isinstance(results, dict) or not isinstance(results.get("results"), dict):
        raise ReportError(f"{results_file}: not an lm-eval results file (no 'results' section)")
    timestamp = results_file.stem[len("results_") :]
    run = Run(results_file, model_name(results, results_file.parent), timestamp, results=results["results"])
    groups = set(results.get("group_subtasks") or {}) | set(results.get("groups") or {})
    sizes = results.get("n-samples") or {}
    for task in results["results"]:
        if task in groups:
            continue
        parsed = parse_task(task)
        if parsed is None:
            run.notes.append(f"ignored task {task} in {results_file} (not a medreason task)")
            continue
        samples_file = results_file.with_name(f"samples_{task}_{timestamp}.jsonl")
        if not samples_file.is_file():
            raise ReportError(
                f"{results_file}: no per-sample log for {task} (expected {samples_file.name}); "
                "rerun lm_eval with --log_samples"
            )
        expected = (sizes.get(task) or {}).get("effective")
        samples = run.tasks[task] = read_samples(samples_file, task, parsed, expected)
        _check_against_results(run, samples, results["results"][task])
    return run


def _check_against_results(run: Run, samples: TaskSamples, aggregated: dict) -> None:
    """A note when the samples log does not reproduce lm-eval's own mean (a log from another run?)."""
    import numpy as np

    for metric in ("acc", f"maj@{max(samples.maj_ks, default=0)}", "output_tokens"):
        if metric not in samples.metrics or samples.strategy == "freeform":
            continue
        logged = [v for key, v in aggregated.items() if key.split(",")[0] == metric and isinstance(v, (int, float))]
        if logged and not np.isclose(np.nanmean(samples.metrics[metric]), logged[0], rtol=1e-6, atol=1e-9):
            run.notes.append(f"{run.results_file}: {samples.task} {metric} is {logged[0]} there but "
                             f"{np.nanmean(samples.metrics[metric])} in its samples log; the report uses the samples")


# Top-level keys around the big span of a sample line (the prompt and the raw responses).
_CUT_FROM, _CUT_TO = b', "arguments": ', b', "filtered_resps": '


def _parse_sample(buf, start: int, end: int, needed: tuple[str, ...]) -> dict:
    """The sample on ``buf[start:end]`` (one line), without copying or parsing its ``arguments`` and ``resps``.

    Inside a JSON string every quote is escaped, so ``, "arguments": `` can only be a
    key; if it were a nested key (in ``doc``), the cut would leave unbalanced brackets
    and the parse fails, and a missing key shows the cut went wrong: both fall back
    to parsing the whole line.
    """
    cut, resume = buf.find(_CUT_FROM, start, end), buf.rfind(_CUT_TO, start, end)
    if start < cut < resume:
        try:
            sample = json.loads(buf[start:cut] + buf[resume:end])
            if all(k in sample for k in needed):
                return sample
        except ValueError:
            pass
    return json.loads(buf[start:end])


def _iter_samples(path: Path, needed: tuple[str, ...]):
    """(line number, sample) for every non-blank line. The file is memory-mapped so that only the small
    parts of each line (doc, metrics) are copied: a 32-sample MedQA log is over 1 GB, nearly all responses."""
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if not size:
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            start, number = 0, 0
            while start < size:
                end = buf.find(b"\n", start)
                end = size if end < 0 else end
                number += 1
                if end - start > 2 or buf[start:end].strip():
                    try:
                        yield number, _parse_sample(buf, start, end, needed)
                    except ValueError as err:
                        raise ReportError(f"{path}: line {number} is not valid JSON ({err})") from None
                start = end + 1


def _loads_lenient(text):
    """A filtered response: JSON (current harness) or a Python literal (some lm-eval versions log repr())."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return None


def read_samples(path: Path, task: str, parsed: tuple[str, str, bool], expected: int | None = None) -> TaskSamples:
    """Per-question values of one samples_<task>_<ts>.jsonl; one entry per doc of the task's filter."""
    import numpy as np

    benchmark, strategy, maj = parsed
    ids, meta, grading, values = [], [], [], []
    needed = ("doc", "filter")
    try:
        for _, sample in _iter_samples(path, needed):
            if sample.get("filter") not in FILTERS:
                continue
            doc = sample.get("doc") or {}
            ids.append(str(doc.get("id", sample.get("doc_id"))))
            doc_meta = doc.get("meta") or {}
            meta.append({k: doc_meta[k] for k in ("step", "field") if k in doc_meta})
            values.append({name: sample.get(name) for name in sample.get("metrics") or ()})
            if strategy == "freeform":
                graded = _loads_lenient((sample.get("filtered_resps") or [None])[0])
                grading.append(graded if isinstance(graded, dict) else {})
    except OSError as err:
        raise ReportError(f"{path}: cannot read ({err})") from None
    if not ids:
        raise ReportError(f"{path}: no samples under the filters {', '.join(FILTERS)}")
    if expected is not None and len(ids) != expected:
        raise ReportError(f"{path}: {len(ids)} samples, but the results file says {expected} questions (truncated log?)")
    if len(set(ids)) != len(ids):
        raise ReportError(f"{path}: question ids repeat; the report joins runs on doc id")
    # A metric a sample does not log counts as missing (NaN): free-form samples leave out acc on a judge error.
    metrics = {}
    for name in dict.fromkeys(name for row in values for name in row):
        try:
            metrics[name] = np.array([np.nan if row.get(name) is None else float(row[name]) for row in values])
        except (TypeError, ValueError):
            continue  # not a per-question number (a metric of another kind); the report does not use it
    samples = TaskSamples(task, benchmark, strategy, maj, ids, metrics, meta, grading if strategy == "freeform" else None,
                          path)
    if (maj and not samples.maj_ks) or (not maj and "acc" not in metrics) or "output_tokens" not in metrics:
        wanted = "maj@k" if maj else "acc"
        raise ReportError(f"{path}: samples carry no '{wanted}' or 'output_tokens' values (not a medreason task log?)")
    return samples


def load_runs(paths: list[Path]) -> list[Run]:
    """Every run under ``paths``; a folder without results, unreadable JSON or a missing samples log is a ReportError."""
    return [load_run(file) for file in find_results_files(paths)]
