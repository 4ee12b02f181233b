"""`medreason distill`: long reasoning traces from a teacher model, filtered into SFT data.

Flow: input cases (a train split by name, or a case-schema JSONL) -> contamination guard
(drop evaluation questions) -> teacher prompt (Jinja, ``prompts/teacher_*.j2`` or the user's
sandboxed ``--template``) -> teacher API (``teacher.Teacher``) -> selection
(``selection.judge_trace``, duplicates) -> ``<output>`` (kept, SFT ``messages``) or
``<output>.dropped.jsonl`` (with the reason). The user turn of a kept example is exactly the
evaluation prompt of the same strategy (``render_case("eval_{style}.j2", case)``), so a model
trained on it is evaluated on the prompt it learned; the assistant turn is the trace.

LongStep is one call per case. LongMonolog is the study's two stages: stage 1 answers with a
summarised reasoning (a wrong or missing answer here drops the case before stage 2), stage 2
expands that reasoning into a long reflective monologue.

The teacher is ``teacher.Teacher`` (live requests: concurrency, rate limits, retries, optional
helper processes) or, with ``--batch``, ``batch.BatchTeacher`` (OpenAI's Batch API); the
pipeline does not know which.

Exactly once: a run holds ``<output>.lock`` (``locks``), so a second run on the same output
refuses at once. A case (its input ``id``) is kept at most once per output, whatever the
settings: a kept case is never asked again. A dropped case is done when it was dropped with
this run's settings (each record's ``id`` hashes the templates, the teacher model, the
generation settings and the case; ``settings`` lists them); a drop made with other settings
makes the run refuse, naming what changed, unless ``retry_dropped`` (``--retry-dropped``) asks
every dropped case again. Only verdicts on a trace (and ``contaminated``) are final drops;
a request that failed after the retries is written as not final and asked again by the next
run; a ``TeacherFatal`` (key, permission, URL, model) stops the run, cancelling the requests
in flight and recording nothing for them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lm_eval_medreason.distillation import selection
from lm_eval_medreason.distillation.store import dropped_path
from lm_eval_medreason.distillation.teacher import Teacher
from lm_eval_medreason.errors import Busy, DataError, TeacherError, scrub

STYLES = {
    "longstep": ("teacher_longstep.j2",),
    "longmonolog": ("teacher_longmonolog_answer.j2", "teacher_longmonolog_expand.j2"),
    "cot": ("teacher_cot.j2",),  # vanilla CoT traces, for the study's CoT-SFT baseline
}
DEFAULT_MAX_TOKENS = {"longstep": 4096, "longmonolog": 8192, "cot": 2048}
REASONING_MAX_TOKENS = 32768  # o1-style: the budget includes the hidden reasoning
NAMED_INPUTS = {"medqa-train": "medqa_train", "medqa_train": "medqa_train", "jama-train": "jama_train",
                "jama_train": "jama_train"}
EVAL_BENCHMARKS = ("medqa", "medbullets", "jama")
@dataclass
class Options:
    """Everything a distill run needs besides the teacher (see ``medreason distill --help``)."""

    input: str
    output: Path
    style: str = "longstep"
    template: Path | None = None
    expand_template: Path | None = None
    min_tokens: int | None = None
    metadata: dict = field(default_factory=dict)
    contamination: bool = True
    eval_benchmarks: tuple = EVAL_BENCHMARKS
    threshold: float = 0.5
    limit: int | None = None
    retry_dropped: bool = False
    fsync: bool = True
    progress: bool = True


# ---------------------------------------------------------------- inputs


def load_inputs(spec: str, metadata: dict | None = None) -> list[dict]:
    """Cases from a named train split (``medqa-train``, ``jama-train``) or a case-schema JSONL file."""
    from lm_eval_medreason.data import loaders

    if spec in NAMED_INPUTS:
        return loaders.load_cases(NAMED_INPUTS[spec], metadata)
    path = Path(spec)
    if not path.is_file():
        raise DataError(f"--input {spec}: no such file, and not a split name ({', '.join(sorted(NAMED_INPUTS))})")
    return loaders.load_case_file(path)


def contamination_guard(options: Options) -> selection.ContaminationGuard:
    """The guard over the evaluation benchmarks' questions, loaded by the same loaders as the tasks."""
    from lm_eval_medreason.data.loaders import load_cases

    questions = []
    for benchmark in options.eval_benchmarks:
        try:
            cases = load_cases(benchmark, options.metadata)
        except DataError as err:
            raise DataError(
                f"contamination guard: cannot load evaluation benchmark {benchmark} ({err}); give its files with "
                "--data-dir, check fewer with --eval-benchmarks, or skip the guard with --no-contamination-check"
            ) from None
        questions.extend((f"{benchmark}:{case['id']}", case["question"]) for case in cases)
    return selection.ContaminationGuard(questions, threshold=options.threshold)


# ---------------------------------------------------------------- templates


class Templates:
    """The teacher prompt(s) of a style: shipped templates, or the user's own in a sandbox."""

    def __init__(self, style: str, template: Path | None = None, expand_template: Path | None = None):
        from lm_eval_medreason.prompts import environment

        names = STYLES[style]
        user = [template, expand_template if style == "longmonolog" else None]
        self.stages, self.texts = [], []
        for name, path in zip(names, user):
            if path is None:
                self.stages.append((name, environment().get_template(name)))
                self.texts.append(environment().loader.get_source(environment(), name)[0])
            else:
                self.stages.append((str(path), _sandboxed(Path(path))))
                self.texts.append(Path(path).read_text("utf-8"))
        # the shared blocks every template includes: a change to them changes the prompts, hence the ids
        self.texts += [environment().loader.get_source(environment(), name)[0] for name in ("question.j2", "case.j2")]

    def render(self, stage: int, case: dict, **extra) -> str:
        import jinja2
        from jinja2.sandbox import SecurityError

        label, template = self.stages[stage]
        try:
            return template.render(question=case["question"], options=case["options"], meta=case.get("meta", {}), **extra)
        except jinja2.UndefinedError as err:
            raise DataError(f"template {label}: undefined variable ({err}); it may use question, options, meta"
                            + (", summary" if stage else "")) from None
        except SecurityError as err:
            raise DataError(f"template {label}: blocked by the sandbox ({err})") from None


def _sandboxed(path: Path):
    """A user template: SandboxedEnvironment, StrictUndefined, may include the shipped templates."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    from lm_eval_medreason.resources import prompts_dir

    if not path.is_file():
        raise DataError(f"--template {path}: no such file")
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader([str(path.resolve().parent), str(prompts_dir())]),
        undefined=jinja2.StrictUndefined, autoescape=False,
    )
    try:
        return env.get_template(path.name)
    except jinja2.TemplateSyntaxError as err:
        raise DataError(f"template {path} line {err.lineno}: {err.message}") from None


def item_id(templates: Templates, teacher: Teacher, style: str, case: dict) -> str:
    """The stable id of (templates, model, settings, case)."""
    key = [templates.texts, teacher.model, style, teacher.settings(),
           [case["id"], case["question"], case["options"], case["answer_idx"]]]
    return _digest(key, 24)


def case_hash(case: dict) -> str:
    """What a case says (question, options, answer): an input case whose id is in the output must match it."""
    return _digest([case["question"], case["options"], case["answer_idx"]], 16)


def run_settings(templates: Templates, teacher: Teacher, style: str) -> dict:
    """The settings an item's id hashes, as each record lists them (the teacher prompt as a hash)."""
    return {"model": teacher.model, "style": style, "templates": _digest(templates.texts, 12), **teacher.settings()}


def _digest(value, length: int) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:length]


def lock_path(output: Path) -> Path:
    return output.with_name(output.name + ".lock")


# ---------------------------------------------------------------- what is left to do


@dataclass
class Plan:
    """What a run on an output does: the cases still to ask, how many are done, which drops it asks again."""

    pending: list  # (item id, case)
    done: int
    retry: set  # source ids of the dropped cases asked again (--retry-dropped)


SETTING_FLAGS = {"model": "--model", "style": "--style", "max_tokens": "--max-tokens", "temperature": "--temperature",
                 "reasoning": "--reasoning-model", "system": "--system"}


def plan(options: Options, items: list, settings: dict) -> Plan:
    """Read the output (without changing it) and sort the input cases (see the module docstring).

    A DataError when an input case's id is in the output with another question, options or answer, or when
    cases were dropped with other settings and ``retry_dropped`` is off.
    """
    from lm_eval_medreason.distillation.store import read_lines

    output = options.output
    kept = {r.get("source_id"): r for r in read_lines(output)}
    dropped: dict = {}
    for record in read_lines(dropped_path(output)):
        if record.get("final", True):  # a failure that is not final is asked again
            dropped.setdefault(record.get("source_id"), []).append(record)
    pending, done, retry, other = [], 0, set(), []
    for ident, case in items:
        previous = [kept[case["id"]]] if case["id"] in kept else dropped.get(case["id"], [])
        for record in previous:
            if record.get("case_hash", case_hash(case)) != case_hash(case):
                raise DataError(f"{output}: case {case['id']!r} is already there with another question, options or "
                                f"answer than in --input {options.input}; give the changed case a new id, or use "
                                "another --output")
        if case["id"] in kept:
            done += 1
        elif previous and options.retry_dropped:
            retry.add(case["id"])
            pending.append((ident, case))
        elif any(r["id"] == ident or r.get("reason") == "contaminated" for r in previous):
            done += 1
        elif previous:
            other.append(previous[-1])
        else:
            pending.append((ident, case))
    if other:
        raise DataError(f"{output}: {len(other)} of its dropped cases were asked with other settings "
                        f"({_changes(other[0].get('settings'), settings)}); add --retry-dropped to ask every dropped "
                        "case again with these settings (kept cases are never asked again), or give a new --output "
                        "to start a fresh file")
    return Plan(pending, done, retry)


def _changes(old, new: dict) -> str:
    """The settings that differ, as flags: "--max-tokens 4096 (now 8192)"."""
    if not isinstance(old, dict):
        return "not listed in its records"
    parts = [f"{flag} {_shown(old.get(key))} (now {_shown(new.get(key))})"
             for key, flag in SETTING_FLAGS.items() if old.get(key) != new.get(key)]
    if old.get("templates") != new.get("templates"):
        parts.append("the teacher prompt (--template, --expand-template or the shipped templates)")
    return ", ".join(parts) or "other settings"


def _shown(value) -> str:
    text = "unset" if value is None else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---------------------------------------------------------------- the run


class Run:
    """One distillation run over pending cases; counts what happened for the summary."""

    def __init__(self, options: Options, teacher: Teacher, templates: Templates, store, min_tokens: int):
        self.options, self.teacher, self.templates, self.store = options, teacher, templates, store
        self.min_tokens = min_tokens
        self.settings = run_settings(templates, teacher, options.style)
        self.counts: Counter = Counter()
        self.kept_tokens: list[int] = [r["meta"].get("trace_tokens", 0) for r in store.kept_records]

    def drop(self, ident: str, case: dict, reason: str, final: bool = True, **extra) -> None:
        self.counts[reason if final else "failed"] += 1
        self.store.write("dropped", {"id": ident, "source_id": case["id"], "case_hash": case_hash(case),
                                     "reason": reason, "final": final, "teacher_model": self.teacher.model,
                                     "style": self.options.style, "settings": self.settings, **extra})

    async def one(self, ident: str, case: dict) -> None:
        style, usage = self.options.style, Counter()
        try:
            prompt = self.templates.render(0, case)
            reply = await self.teacher.ask(prompt, custom_id=f"{ident}-1")
            _add_usage(usage, reply)
            if style == "longmonolog":
                # on the loop, so that in --batch mode the stage-2 requests go out together, as one batch
                stage1 = selection.judge_trace(reply.text, reply.finish_reason, case, 0)
                if stage1.reason:
                    return self.drop(ident, case, stage1.reason, stage=1, answer=stage1.answer,
                                     gold=case["answer_idx"], finish_reason=reply.finish_reason, **usage)
                prompt = self.templates.render(1, case, summary=reply.text)
                reply = await self.teacher.ask(prompt, custom_id=f"{ident}-2")
                _add_usage(usage, reply)
        except TeacherError as err:
            return self.drop(ident, case, err.kind, final=err.final, error=scrub(str(err)), **usage)
        judged, digest = await _judge(reply, case, self.min_tokens)
        extra = {"answer": judged.answer, "gold": case["answer_idx"], "finish_reason": reply.finish_reason, **usage}
        if judged.reason:
            return self.drop(ident, case, judged.reason, trace_tokens=judged.tokens, **extra)
        if digest in self.store.trace_hashes:
            return self.drop(ident, case, "duplicate", trace_tokens=judged.tokens, **extra)
        self.store.trace_hashes.add(digest)
        from lm_eval_medreason.prompts import render_case

        user = render_case(f"eval_{style}.j2", case)
        meta = {"source_id": case["id"], "teacher_model": self.teacher.model, "style": style,
                "trace_tokens": judged.tokens, "trace_hash": digest, "settings": self.settings, **extra}
        self.store.write("kept", {"id": ident, "source_id": case["id"], "case_hash": case_hash(case), "messages": [
            {"role": "user", "content": user}, {"role": "assistant", "content": judged.text}], "meta": meta})
        self.counts["kept"] += 1
        self.kept_tokens.append(judged.tokens)

    async def all(self, pending: list[tuple[str, dict]]) -> None:
        from tqdm import tqdm

        queue: asyncio.Queue = asyncio.Queue()
        for item in pending:
            queue.put_nowait(item)
        bar = tqdm(total=len(pending), desc="distill", unit="case", disable=not self.options.progress, file=sys.stderr)

        async def worker():
            while not queue.empty():
                ident, case = queue.get_nowait()
                await self.one(ident, case)
                bar.update(1)

        # Twice as many workers as requests in flight: while one worker judges and writes its reply,
        # another's request already holds the freed slot.
        workers = min(2 * self.teacher.concurrency, len(pending)) or 1
        try:
            async with self.teacher:
                tasks = [asyncio.create_task(worker()) for _ in range(workers)]
                try:
                    await asyncio.gather(*tasks)
                finally:  # a TeacherFatal (or Ctrl-C) stops every worker: the cases in flight stay to do
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            bar.close()


async def _judge(reply, case: dict, min_tokens: int):
    """``selection.judge_trace`` and the kept trace's duplicate key, on a worker thread.

    Token counting and hashing are most of the CPU a reply costs here; off the event loop
    (tiktoken releases the GIL) they do not delay the other requests in flight.
    """

    def work():
        judged = selection.judge_trace(reply.text, reply.finish_reason, case, min_tokens)
        return judged, None if judged.reason else selection.trace_hash(judged.text)

    return await asyncio.to_thread(work)


def _add_usage(usage: Counter, reply) -> None:
    usage["prompt_tokens"] += reply.prompt_tokens
    usage["completion_tokens"] += reply.completion_tokens
    usage["reasoning_tokens"] += reply.reasoning_tokens


def prepare(options: Options, teacher: Teacher):
    """Templates, the input items (item id, case) and the contamination guard (None when skipped)."""
    templates = Templates(options.style, options.template, options.expand_template)
    cases = load_inputs(options.input, options.metadata)
    if options.limit is not None:
        cases = cases[: options.limit]
    guard = contamination_guard(options) if options.contamination else None
    items = [(item_id(templates, teacher, options.style, case), case) for case in cases]
    for _, case in items[:1]:
        templates.render(0, case)  # fail fast on a bad template
        if len(templates.stages) > 1:
            templates.render(1, case, summary="")
    return templates, items, guard


def run(options: Options, teacher: Teacher) -> dict:
    """Distill; returns the statistics it prints. Safe to interrupt and re-run (see store)."""
    from lm_eval_medreason.distillation.store import TraceStore
    from lm_eval_medreason.locks import hold

    try:
        lock = hold(lock_path(options.output))
    except Busy as err:
        raise DataError(f"{options.output}: another medreason distill (process {err.owner}) is writing it; wait for "
                        "it to end, or use another --output") from None
    try:
        templates, items, guard = prepare(options, teacher)
        min_tokens = options.min_tokens
        if min_tokens is None:
            min_tokens = selection.DEFAULT_MIN_TOKENS[options.style]
        todo = plan(options, items, run_settings(templates, teacher, options.style))
        store = TraceStore(options.output, fsync=options.fsync, forget=todo.retry)
        job = Run(options, teacher, templates, store, min_tokens)
        pending = []
        try:
            for ident, case in todo.pending:
                match = guard.match(case["question"]) if guard else None
                if match:
                    job.drop(ident, case, "contaminated", eval_case=match[0], similarity=round(match[1], 3))
                else:
                    pending.append((ident, case))
            asyncio.run(job.all(pending))
        finally:
            store.close()
    finally:
        lock.close(remove=True)
    return summarise(options, job, store, len(items), todo)


def summarise(options: Options, job: Run, store, total: int, todo: Plan) -> dict:
    """The statistics of the run, all files included (earlier runs too)."""
    from lm_eval_medreason.distillation.store import read_lines

    kept = read_lines(store.output)
    records = read_lines(store.dropped)
    dropped = Counter(r["reason"] for r in records if r.get("final", True))
    failed = Counter(r["reason"] for r in records if not r.get("final", True))
    tokens = [r["meta"].get("trace_tokens", 0) for r in kept]
    return {"inputs": total, "resumed": todo.done, "retried_drops": len(todo.retry), "this_run": dict(job.counts),
            "kept": len(kept), "dropped": dict(sorted(dropped.items())), "failed": dict(sorted(failed.items())),
            "mean_tokens": round(sum(tokens) / len(tokens), 1) if tokens else None,
            "study_mean_tokens": selection.STUDY_MEAN_TOKENS.get(options.style)}


def format_stats(stats: dict, output: Path) -> str:
    mean = "-" if stats["mean_tokens"] is None else f"{stats['mean_tokens']:.0f}"
    retried = f"; {stats['retried_drops']} dropped ones asked again" if stats.get("retried_drops") else ""
    lines = [
        f"inputs: {stats['inputs']} ({stats['resumed']} done in earlier runs{retried})",
        f"kept: {stats['kept']} in {output} (mean {mean} tokens per trace; the study's mean: {stats['study_mean_tokens'] or 'not given'})",
        f"dropped: {sum(stats['dropped'].values())} in {output.name}.dropped.jsonl"
        + "".join(f"\n  {reason}: {n}" for reason, n in stats["dropped"].items()),
    ]
    failed = sum(stats.get("failed", {}).values())
    if failed:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in stats["failed"].items())
        lines.append(f"{failed} failed and will be retried by the next run ({reasons}; API or transport errors after "
                     "the retries, listed with final: false in the dropped file): run the same command again")
    return "\n".join(lines)
