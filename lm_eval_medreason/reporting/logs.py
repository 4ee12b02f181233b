"""Read what ``lm_eval ... --output_path OUT --log_samples`` wrote, keeping only what the report needs.

lm-eval writes ``OUT/<model>/results_<timestamp>.json`` and, per task,
``samples_<task>_<timestamp>.jsonl`` (same timestamp): one run. Each sample line
carries the prompt and every raw response (32 of ~1,000 tokens each for a ``_maj``
task, so hundreds of MB per run); the report needs only the question id, its
``meta`` (MedQA step, JAMA field), the per-sample metric values and, for free-form
grading, the small ``filtered_resps``. ``_parse_sample`` therefore cuts the
``arguments``/``resps`` span out of the line before parsing it (see there why
that is safe) and the rest is parsed with the stdlib ``json``. ``iter_samples`` and
``responses_and_scores`` are the one way the report, its page and ``medreason audit``
read sample logs (the page and the audit keep the responses).
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
# The kinds of task: "" (one answer), "maj" (32 votes), and the scaling modes "adaptive" and "budget".
SCALING_MODES = ("adaptive", "budget")
_TASK = re.compile(rf"^({'|'.join(sorted(BENCHMARKS, key=len, reverse=True))})_({'|'.join(STRATEGIES)})"
                   rf"(?:_(maj|{'|'.join(SCALING_MODES)}))?$")
_MAJ_KEY = re.compile(r"^maj@(\d+)$")
_BUDGET_KEY = re.compile(r"^acc@(\d+)$")


def parse_task(name: str) -> tuple[str, str, bool] | None:
    """``medqa_cot_maj`` -> ("medqa", "cot", True): a task of Table 1 (one answer or a vote); None for any other
    task, an ``_adaptive`` or ``_budget`` one included (see ``scaling_task``)."""
    match = _TASK.match(name)
    return (match[1], match[2], match[3] == "maj") if match and match[3] in (None, "maj") else None


def scaling_task(name: str) -> tuple[str, str, str] | None:
    """``medqa_cot_budget`` -> ("medqa", "cot", "budget"); None unless an ``_adaptive`` or ``_budget`` task."""
    match = _TASK.match(name)
    return (match[1], match[2], match[3]) if match and match[3] in SCALING_MODES else None


def task_kind(name: str) -> tuple[str, str, str] | None:
    """(benchmark, strategy, mode) of any task of ours, mode "" for one answer; None for a task not ours."""
    parsed = parse_task(name)
    return (parsed[0], parsed[1], "maj" if parsed[2] else "") if parsed else scaling_task(name)


@dataclass
class TaskSamples:
    """One task of one run: per-question ids, metric values (NaN where the log has null) and difficulty meta."""

    task: str
    benchmark: str
    strategy: str
    mode: str  # "" (one answer), "maj", "adaptive" or "budget"
    ids: list[str]
    metrics: dict[str, np.ndarray]
    meta: list[dict]
    grading: list[dict] | None = None  # free-form only: correct, matcher_correct, grader, judge_error
    path: Path | None = None  # the samples log (the HTML page reads the responses from it)
    votes: list[tuple] | None = None  # "maj" only: per question, every sample's letter (None: no answer), in log order
    gold: list[str | None] | None = None  # "maj" only: per question, the gold letter

    @property
    def maj(self) -> bool:
        return self.mode == "maj"

    @property
    def maj_ks(self) -> list[int]:
        return sorted(int(m[1]) for m in map(_MAJ_KEY.match, self.metrics) if m)

    @property
    def budgets(self) -> list[int]:
        """The budgets B of a ``_budget`` task (its ``acc@B`` metrics), ascending."""
        return sorted(int(m[1]) for m in map(_BUDGET_KEY.match, self.metrics) if m)


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
        parsed = task_kind(task)
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


# Top-level keys around the big span of a sample line: the prompt, then the raw responses.
_CUT_FROM, _CUT_TO, _RESPS = b', "arguments": ', b', "filtered_resps": ', b', "resps": '


def _parse_sample(buf, start: int, end: int, needed: tuple[str, ...], responses: bool = False) -> dict:
    """The sample on ``buf[start:end]`` (one line), without copying or parsing its ``arguments`` (the prompt)
    and, unless ``responses``, its ``resps``.

    Inside a JSON string every quote is escaped, so ``, "arguments": `` can only be a
    key; if it were a nested key (in ``doc``), the cut would leave unbalanced brackets
    and the parse fails, and a missing key shows the cut went wrong: both fall back
    to parsing the whole line.
    """
    cut = buf.find(_CUT_FROM, start, end)
    resume = buf.find(_RESPS, cut, end) if responses and cut >= 0 else buf.rfind(_CUT_TO, start, end)
    if start < cut < resume:
        try:
            sample = json.loads(buf[start:cut] + buf[resume:end])
            if all(k in sample for k in needed):
                return sample
        except ValueError:
            pass
    return json.loads(buf[start:end])


def iter_samples(path: Path, needed: tuple[str, ...] = ("doc", "filter"), responses: bool = False):
    """(line number, sample) for every non-blank line of a samples log, without the prompt (``arguments``) and,
    unless ``responses``, the raw responses; ``needed``: the keys every sample has (else the line is parsed
    whole). The file is memory-mapped so that only the parts of each line parsed are copied: a 32-sample
    MedQA log is over 1 GB, nearly all responses. An unreadable file or a broken line is a ReportError."""
    try:
        handle = path.open("rb")
    except OSError as err:
        raise ReportError(f"{path}: cannot read ({err})") from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if not size:
            return
        try:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as err:
            raise ReportError(f"{path}: cannot read ({err})") from None
        with mapped as buf:
            start, number = 0, 0
            while start < size:
                end = buf.find(b"\n", start)
                end = size if end < 0 else end
                number += 1
                if end - start > 2 or buf[start:end].strip():
                    try:
                        yield number, _parse_sample(buf, start, end, needed, responses)
                    except ValueError as err:
                        raise ReportError(f"{path}: line {number} is not valid JSON ({err})") from None
                start = end + 1


def loads_lenient(text):
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


def responses_and_scores(sample: dict) -> tuple[list, list]:
    """A sample's raw responses (``resps``, read with ``iter_samples(..., responses=True)``) and what the filter
    made of each (``filtered_resps``, parsed: a dict, or None), whether lm-eval logged them nested or flat."""
    resps = sample.get("resps") or [[]]
    filtered = sample.get("filtered_resps") or [[]]
    responses = resps[0] if isinstance(resps[0], list) else resps
    scored = filtered[0] if isinstance(filtered[0], list) else filtered
    return responses, [loads_lenient(s) for s in scored]


def _votes(sample: dict) -> tuple:
    """Every sampled response's letter of a ``_maj`` sample (from ``filtered_resps``; None: no answer).
    The scored responses are parsed as one JSON array, since a report reads tens of thousands of them."""
    scored = (sample.get("filtered_resps") or [[]])[0]
    scored = scored if isinstance(scored, list) else [scored]
    try:
        parsed = json.loads("[" + ",".join(scored) + "]")
    except (TypeError, ValueError):
        parsed = [loads_lenient(s) for s in scored]
    return tuple(s.get("choice") if isinstance(s, dict) else None for s in parsed)


def read_samples(path: Path, task: str, parsed: tuple[str, str, str], expected: int | None = None) -> TaskSamples:
    """Per-question values of one samples_<task>_<ts>.jsonl; one entry per doc of the task's filter.
    ``parsed`` is ``task_kind(task)``."""
    import numpy as np

    benchmark, strategy, mode = parsed
    ids, meta, grading, values, votes, gold = [], [], [], [], [], []
    for _, sample in iter_samples(path):
        if sample.get("filter") not in FILTERS:
            continue
        doc = sample.get("doc") or {}
        ids.append(str(doc.get("id", sample.get("doc_id"))))
        doc_meta = doc.get("meta") or {}
        meta.append({k: doc_meta[k] for k in ("step", "field") if k in doc_meta})
        values.append({name: sample.get(name) for name in sample.get("metrics") or ()})
        if strategy == "freeform":
            graded = loads_lenient((sample.get("filtered_resps") or [None])[0])
            grading.append(graded if isinstance(graded, dict) else {})
        if mode == "maj":
            votes.append(_votes(sample))
            gold.append(doc.get("answer_idx"))
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
    samples = TaskSamples(task, benchmark, strategy, mode, ids, metrics, meta,
                          grading if strategy == "freeform" else None, path,
                          votes if mode == "maj" else None, gold if mode == "maj" else None)
    required = {"": ["acc"], "maj": [], "adaptive": ["acc", "samples"], "budget": ["acc"]}[mode] + ["output_tokens"]
    missing = [name for name in required if name not in metrics]
    missing += ["maj@k"] if mode == "maj" and not samples.maj_ks else []
    missing += ["acc@B"] if mode == "budget" and not samples.budgets else []
    if missing:
        raise ReportError(f"{path}: samples carry no {' or '.join(map(repr, missing))} values "
                          "(not a medreason task log?)")
    return samples


def load_runs(paths: list[Path]) -> list[Run]:
    """Every run under ``paths``; a folder without results, unreadable JSON or a missing samples log is a ReportError."""
    return [load_run(file) for file in find_results_files(paths)]
