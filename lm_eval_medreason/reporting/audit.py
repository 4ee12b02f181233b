"""`medreason audit`: how the grader read every response, so that a user can check it on their own model.

For each multiple-choice task of each run under the given folders it prints the responses counted
by the rule that read their answer (``answers.read_choice``: ``phrase``, ``text``, ``final_line``,
``none``) and a reproducible random sample of the responses with no answer and of those whose answer
was read from an option's text (the rule most worth a second look), with the span the grader read
highlighted. The rule and span come from the sample log (``filtered_resps``); a log written before
they were logged is re-read with ``read_choice``, and the audit says so. An ``_adaptive`` task counts
only the samples drawn (not those the wrapper skipped once a vote had stopped); a ``_budget`` task
counts its full-budget responses (the envelope's response; the forced answers at each budget are
answers to an answer-forcing suffix, not responses to audit).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lm_eval_medreason.errors import ReportError
from lm_eval_medreason.evaluation import budget
from lm_eval_medreason.evaluation.adaptive import NOT_DRAWN
from lm_eval_medreason.evaluation.answers import read_choice
from lm_eval_medreason.reporting.logs import find_results_files, iter_samples, responses_and_scores, task_kind

RULES = ("phrase", "text", "final_line", "none")  # how answers.read_choice read a response
SAMPLED_RULES = ("none", "text")  # the samples shown: no answer, and answers read from an option's text
_CONTEXT = 240  # characters shown around a span; the tail shown of a response with no answer


@dataclass
class Read:
    """One response as the grader read it."""

    doc_id: int
    response: str
    letter: str | None
    rule: str
    span: tuple[int, int] | None
    gold: str | None
    options: dict


@dataclass
class TaskAudit:
    """The counts by rule of one task's responses and the seeded samples of the rules in SAMPLED_RULES."""

    task: str
    samples_file: Path
    counts: Counter = field(default_factory=Counter)
    picked: dict[str, list[Read]] = field(default_factory=dict)
    reread: int = 0  # responses whose log carried no rule (older logs): read again here


def audit_task(samples_file: Path, task: str, k: int, seed: int) -> TaskAudit:
    """Count one samples log by rule and draw ``k`` responses per sampled rule (reservoir sampling, seeded by task)."""
    audit = TaskAudit(task, samples_file)
    rng = random.Random(f"{seed}:{task}")
    seen = Counter()
    audit.picked = {rule: [] for rule in SAMPLED_RULES}
    for number, sample in iter_samples(samples_file, ("doc", "resps"), responses=True):
        for read in _reads(sample, samples_file, number, audit):
            audit.counts[read.rule] += 1
            if read.rule not in audit.picked:
                continue
            seen[read.rule] += 1
            pool = audit.picked[read.rule]
            if len(pool) < k:
                pool.append(read)
            elif (slot := rng.randrange(seen[read.rule])) < k:
                pool[slot] = read
    return audit


def _reads(sample: dict, path: Path, number: int, audit: TaskAudit):
    """Every response of one logged question with the rule and span it was read by."""
    doc = sample.get("doc") or {}
    options = doc.get("options")
    if not isinstance(options, dict):
        raise ReportError(f"{path}: line {number} has no doc.options (not a multiple-choice medreason task log?)")
    responses, scored = responses_and_scores(sample)
    budgeted = (task_kind(audit.task) or ("", "", ""))[2] == "budget"
    for response, logged in zip(responses, scored):
        if response == NOT_DRAWN:  # an adaptive vote had stopped: never sent, nothing to read
            continue
        if budgeted:
            try:
                response = budget.unpack(response or "")[0]
            except ValueError:
                raise ReportError(f"{path}: line {number} is a _budget sample without its envelope "
                                  "(not written by --model medreason?)") from None
        if isinstance(logged, dict) and "rule" in logged:
            span = logged.get("span") or (None, None)
            span = tuple(span) if span[0] is not None else None
            letter, rule = logged.get("choice"), logged["rule"]
        else:
            reading = read_choice(response or "", options)
            letter, rule, audit.reread = reading.letter, reading.rule, audit.reread + 1
            span = (reading.start, reading.end) if reading.start is not None else None
        yield Read(sample.get("doc_id"), response or "", letter, rule, span, doc.get("answer_idx"), options)


def find_samples(paths: list[Path]) -> list[tuple[str, Path]]:
    """(task, samples file) of every multiple-choice medreason task of every run under ``paths``."""
    found = []
    for results_file in find_results_files(paths):
        timestamp = results_file.stem[len("results_") :]
        for samples_file in sorted(results_file.parent.glob(f"samples_*_{timestamp}.jsonl")):
            task = samples_file.name[len("samples_") : -len(f"_{timestamp}.jsonl")]
            parsed = task_kind(task)
            if parsed and parsed[1] != "freeform":
                found.append((task, samples_file))
    if not found:
        raise ReportError(f"{', '.join(map(str, paths))}: no samples log of a multiple-choice medreason task "
                          "(run lm_eval with --log_samples)")
    return found


def highlight(read: Read, marks: tuple[str, str]) -> str:
    """The part of the response the grader looked at: the span with context, or the tail when nothing was read."""
    text = read.response
    if read.span is None:
        tail = text[-2 * _CONTEXT :]
        return ("..." if len(tail) < len(text) else "") + tail
    start, end = read.span
    before, after = text[max(0, start - _CONTEXT) : start], text[end : end + _CONTEXT // 2]
    return (("..." if start > _CONTEXT else "") + before + marks[0] + text[start:end] + marks[1] + after
            + ("..." if end + _CONTEXT // 2 < len(text) else ""))


def format_audit(audit: TaskAudit, marks: tuple[str, str]) -> str:
    """One task's audit as text: counts by rule, then the samples."""
    total = sum(audit.counts.values())
    lines = [f"== {audit.task}: {total} responses ({audit.samples_file})"]
    if audit.reread:
        lines.append(f"   {audit.reread} responses were logged without their rule: read again with today's grader")
    for rule in dict.fromkeys((*RULES, *audit.counts)):
        n = audit.counts.get(rule, 0)
        lines.append(f"   {rule:<11} {n:>8}  {n / total if total else 0:6.1%}")
    titles = {"none": "no answer", "text": "answer read from an option's text"}
    for rule in SAMPLED_RULES:
        picked = audit.picked[rule]
        lines.append(f"-- {titles[rule]}: {len(picked)} of {audit.counts.get(rule, 0)}")
        for read in sorted(picked, key=lambda r: (r.doc_id if isinstance(r.doc_id, int) else -1)):
            chosen = f"read {read.letter}" if read.letter else "read nothing"
            option = f" ({read.options.get(read.letter)})" if read.letter else ""
            lines.append(f"   [doc {read.doc_id}] gold {read.gold}; {chosen}{option}")
            if read.letter is None:  # the options, so that a missed answer named by its text can be spotted
                lines.append("   options: " + " | ".join(f"{k}. {_short(str(v))}" for k, v in read.options.items()))
            body = re.sub(r"\n\s*\n+", "\n", highlight(read, marks)).strip()
            lines.extend("      " + line for line in body.splitlines())
    return "\n".join(lines)


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_audit(paths: list[Path], k: int = 5, seed: int = 0, color: bool = False) -> str:
    """The audit of every multiple-choice task under ``paths``, as printed by ``medreason audit``."""
    marks = ("\x1b[1;7m", "\x1b[0m") if color else (">>>", "<<<")
    return "\n\n".join(format_audit(audit_task(path, task, k, seed), marks) for task, path in find_samples(paths))
