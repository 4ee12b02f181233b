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

from lm_eval_medreason.data import registry
from lm_eval_medreason.distillation import selection
from lm_eval_medreason.distillation.store import dropped_path
from lm_eval_medreason.distillation.teacher import Teacher, is_reasoning_model
from lm_eval_medreason.errors import Busy, DataError, TeacherError, scrub

STYLES = {
    "longstep": ("teacher_longstep.j2",),
    "longmonolog": ("teacher_longmonolog_answer.j2", "teacher_longmonolog_expand.j2"),
    "cot": ("teacher_cot.j2",),  # vanilla CoT traces, for the study's CoT-SFT baseline
}
DEFAULT_MAX_TOKENS = {name: s.distill_max_tokens for name, s in registry.STRATEGIES.items() if s.distillable}
REASONING_MAX_TOKENS = 32768  # o1-style: the budget includes the hidden reasoning
NAMED_INPUTS = {"medqa-train": "medqa_train", "medqa_train": "medqa_train", "jama-train": "jama_train",
                "jama_train": "jama_train"}
EVAL_BENCHMARKS = registry.study_benchmarks()  # the contamination guard's default: the study's three


def names(text: str) -> tuple[str, ...]:
    """A comma-separated list (``--eval-benchmarks``): spaces around names and empty entries are ignored."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def path_or_none(text: str) -> Path | None:
    """A file option (``--template``): empty text is no file, i.e. the shipped one."""
    return Path(text) if text else None


@dataclass(frozen=True)
class Options:
    """What a distill run does besides asking the teacher. Each field is an option of ``medreason distill``:
    its metadata holds the help text and how the command line parses it (see ``DistillConfig``)."""

    input: str = field(metadata={"help": "medqa-train (hub GBaker/MedQA-USMLE-4-options, split train, or a local "
                       "medqa_train_path), jama-train (scraped JAMA cases outside the 646 evaluation subset), or a "
                       "JSONL file of cases {id, question, options, answer_idx, answer, meta}"})
    output: Path = field(metadata={"help": "JSONL of kept traces (appended to; the dropped ones go to "
                         "OUTPUT.dropped.jsonl)"})
    style: str = field(default="longstep", metadata={"choices": tuple(STYLES), "help": "longstep: one call, a "
                       "numbered analysis; longmonolog: two calls, an answer with summarised reasoning, then its "
                       "expansion into a reflective monologue; cot: one call, a brief chain of thought (the study's "
                       "CoT-SFT baseline data) (default longstep)"})
    template: Path | None = field(default=None, metadata={"metavar": "PATH", "type": path_or_none, "help": "your "
                                  "own Jinja teacher prompt (stage 1 for longmonolog), rendered in a sandbox with "
                                  'question, options, meta; may {% include "question.j2" %}'})
    expand_template: Path | None = field(default=None, metadata={"metavar": "PATH", "type": path_or_none, "help":
                                         "your own longmonolog stage-2 prompt (also gets summary)"})
    min_tokens: int | None = field(default=None, metadata={"min": 0, "help": "drop traces shorter than this many "
                                   "tiktoken tokens (default 300 longstep, 500 longmonolog: the study kept only "
                                   "substantial thought processes; 0 cot)"})
    data_dir: str | None = field(default=None, metadata={"help": "data folder for the inputs and the contamination "
                                 "guard's evaluation benchmarks (like lm-eval's --metadata data_dir; MEDREASON_* "
                                 "variables also apply)"})
    eval_benchmarks: tuple = field(default=EVAL_BENCHMARKS, metadata={"type": names, "help": (
        "benchmarks whose questions the contamination guard drops from the input (default "
        f"{','.join(EVAL_BENCHMARKS)}: the study's three, MedQA test, Medbullets and the JAMA 646 subset); a "
        "benchmark that cannot be loaded is an error")})
    threshold: float = field(default=0.5, metadata={"flag": "--contamination-threshold", "above": 0, "max": 1,
                             "help": "word-trigram Jaccard similarity at or above which an input counts as a near "
                             "copy of an evaluation question (above 0, at most 1; default 0.5)"})
    contamination: bool = field(default=True, metadata={"flag": "--no-contamination-check",
                                "help": "skip the contamination guard (explicitly)"})
    limit: int | None = field(default=None, metadata={"min": 1, "help": "only the first N input cases"})
    retry_dropped: bool = field(default=False, metadata={"help": "ask every dropped case of OUTPUT again (kept "
                                "cases never are), e.g. after raising --max-tokens; needed to re-run an OUTPUT with "
                                "other settings"})
    fsync: bool = field(default=True, metadata={"flag": "--no-fsync", "help": "do not fsync after each line "
                        "(faster; a power cut may lose the last lines, a killed process still loses nothing)"})
    progress: bool = field(default=True, metadata={"flag": "--no-progress", "help": "no progress bar"})

    @property
    def metadata(self) -> dict:
        """What the loaders read as lm-eval's ``--metadata``: ``data_dir`` when one is given."""
        return {"data_dir": self.data_dir} if self.data_dir else {}


@dataclass(frozen=True, kw_only=True)
class DistillConfig(Options):
    """Every option of ``medreason distill``, as TRL's ``SFTConfig`` carries ``medreason train``'s: the run's
    (``Options``), the teacher's and the command's own. The command line is built from these fields (one
    option each, ``--field-name`` unless the metadata names its ``flag``; a bool is a switch; ``min``,
    ``above`` and ``max`` bound a number at parse time) and parsed straight into this class. It is frozen: what
    depends on other options (o1-style or not, the completion budget) is a property, never set afterwards."""

    model: str = field(metadata={"help": "the teacher model name the API knows"})
    base_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible endpoint, e.g. "
                                 "http://127.0.0.1:8000/v1 (default: OpenAI's)"})
    system: str | None = field(default=None, metadata={"help": "a system message (folded into the user message for "
                               "o1-style models)"})
    concurrency: int = field(default=16, metadata={"min": 1, "help": "requests in flight at once (default 16)"})
    processes: int = field(default=1, metadata={"min": 1, "help": "helper processes that make the HTTP calls "
                           "(default 1: in this process, whose CPU caps the requests per second, see "
                           "benchmarks/README.md); use 2-4 only on a machine with idle cores, for very high "
                           "concurrency"})
    http_client: str = field(default="aiohttp", metadata={"choices": ("aiohttp", "httpx"), "help": "the openai "
                             "SDK's HTTP transport: aiohttp (default; less CPU per request) or httpx (the SDK's "
                             "default)"})
    rpm: float = field(default=0, metadata={"min": 0, "help": "requests per minute limit (token bucket; default 0 "
                       "= none)"})
    tpm: float = field(default=0, metadata={"min": 0, "help": "tokens per minute limit (prompt + expected "
                       "completion, corrected by the reported usage; default 0 = none)"})
    max_retries: int = field(default=5, metadata={"min": 0, "help": "retries per request for 408/409/429/5xx, "
                             "timeouts, connection errors (the SDK's, honouring Retry-After), malformed responses "
                             "and content filters (default 5)"})
    timeout: float = field(default=600, metadata={"above": 0, "help": "per-request timeout in seconds (default 600)"})
    max_tokens: int | None = field(default=None, metadata={"min": 1, "help": "completion budget (default " + ", ".join(
        f"{DEFAULT_MAX_TOKENS[style]} {style}" for style in STYLES) + f", {REASONING_MAX_TOKENS} for reasoning "
        "models, sent as max_completion_tokens)"})
    temperature: float | None = field(default=None, metadata={"min": 0, "help": "sampling temperature (default: "
                                      "the server's; never sent to reasoning models)"})
    reasoning_model: bool = field(default=False, metadata={"help": "treat the model as o1-style (automatic for "
                                  "names starting o1, o3, o4): no system role, max_completion_tokens, no temperature"})
    batch: bool = field(default=False, metadata={"help": "send the requests through the Batch API (files + "
                        "batches; one batch per stage (more above --batch-max-requests), failures resubmitted twice; "
                        "a killed run resumes polling the batch it submitted, saved in OUTPUT.batches.json); "
                        "--concurrency, --rpm and --tpm do not apply"})
    batch_poll_interval: float = field(default=30, metadata={"above": 0, "help": "seconds between batch status "
                                       "checks (default 30)"})
    batch_max_requests: int = field(default=50_000, metadata={"min": 1, "help": "requests per batch: a stage with "
                                    "more goes out as several batches at once (default 50,000, OpenAI's limit; "
                                    "batches are also kept under its 200 MB input file limit)"})
    dry_run: bool = field(default=False, metadata={"help": "print requests, estimated tokens and cost; send nothing "
                          "and write nothing"})
    price_input: float | None = field(default=None, metadata={"min": 0, "help": "USD per 1M input tokens for "
                                      "--dry-run (default: a small table of known models)"})
    price_output: float | None = field(default=None, metadata={"min": 0, "help": "USD per 1M output tokens for "
                                       "--dry-run"})

    @property
    def reasoning(self) -> bool:
        """o1-style: ``--reasoning-model``, or a model name starting o1, o3 or o4."""
        return self.reasoning_model or is_reasoning_model(self.model)

    @property
    def completion_budget(self) -> int:
        """``--max-tokens``, else the style's default (a reasoning model's budget includes its hidden reasoning)."""
        return self.max_tokens or (REASONING_MAX_TOKENS if self.reasoning else DEFAULT_MAX_TOKENS[self.style])

    def teacher(self) -> Teacher:
        """The teacher these options describe: live requests, or OpenAI's Batch API with ``--batch``."""
        settings = {
            "base_url": self.base_url, "rpm": self.rpm, "tpm": self.tpm, "max_retries": self.max_retries,
            "timeout": self.timeout, "max_tokens": self.completion_budget, "reasoning": self.reasoning,
            "temperature": None if self.reasoning else self.temperature, "system": self.system,
            "expected_completion": selection.EXPECTED_TRACE_TOKENS[self.style], "processes": self.processes,
            "http_client": self.http_client,
        }
        if not self.batch:
            return Teacher(self.model, concurrency=self.concurrency, **settings)
        from lm_eval_medreason.distillation.batch import BatchTeacher

        # every pending case asks at once: the batch, not the requests in flight, is the unit
        return BatchTeacher(self.model, concurrency=10**9, **settings,
                            state_path=self.output.with_name(self.output.name + ".batches.json"),
                            poll_interval=self.batch_poll_interval, max_batch_requests=self.batch_max_requests)


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
