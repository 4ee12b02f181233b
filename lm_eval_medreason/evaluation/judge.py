"""An LLM judge for free-form answers, through the ``openai`` SDK (any OpenAI-compatible server).

``Judge(model, base_url=...).grade(question, gold_answer, response_answer)`` renders
``prompts/judge.j2`` and returns a ``Verdict``: ``correct`` True/False, or None with
``error`` set (a judge error, which the free-form tasks leave out of accuracy: a failed
API call is never a wrong answer).

- Verdicts are parsed strictly (``parse_verdict``): the reply, after a closed ``<think>``
  block, must end with the line ``Verdict: CORRECT`` or ``Verdict: INCORRECT`` (or that word
  alone), and state no other verdict (no "Verdict: ..." line, no capitalised CORRECT/INCORRECT)
  that contradicts it. Anything else is malformed: the judge is asked again with a reminder
  (``REPAIR``), at most ``malformed_retries`` times, then it is a judge error. Never guessed.
- HTTP 408/409/429/5xx and connection errors are retried by the SDK itself
  (``max_retries``, exponential backoff from 0.5 s to 8 s, honouring ``Retry-After``);
  when they persist the verdict is a judge error naming the error class.
- Successful verdicts are cached on disk, keyed by a hash of (model, rendered prompt), so
  re-scoring costs no API call; errors are not cached, so they are retried next time.
  The cache is one small JSON file per key, written to a temporary file and renamed into
  place: safe for the grading threads (and for several processes) without a lock or a
  database connection per thread, readable by hand, removable with ``rm -r``. A write that
  fails (read-only folder, full disk) is logged once and the verdict kept in memory: grading
  runs after generation, so nothing there may stop the run.
- ``Judge.check`` is the preflight the free-form tasks run when lm-eval builds them, before
  generation: the cache folder is writable and the endpoint answers a one-token completion;
  else ``JudgeSetupError``, one line naming the setting to fix.
- No message the judge produces (verdict errors, preflight errors) contains the API key.
"""

import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from lm_eval_medreason.errors import JudgeSetupError, scrub
from lm_eval_medreason.evaluation.answers import reasoning_end
from lm_eval_medreason.prompts import render

log = logging.getLogger(__name__)

API_KEY_ENVS = ("MEDREASON_JUDGE_API_KEY", "OPENAI_API_KEY")
CACHE_ENV = "MEDREASON_JUDGE_CACHE_DIR"
NO_CACHE = "off"  # cache_dir value that disables the disk cache
REPAIR = (
    "Your reply did not end with a verdict line. Reply with exactly one line: "
    "`Verdict: CORRECT` or `Verdict: INCORRECT`."
)
_VERDICT_LINE = re.compile(r"[*_`\s]*(?:verdict[*_`\s]*[:：][*_`\s]*)?(CORRECT|INCORRECT)[*_`.\s]*", re.I)
# Every verdict the reply states: labelled ones in any case, bare ones in capitals.
_ANY_VERDICT = re.compile(r"(?i:verdict[*_`\s]*[:：][*_`\s]*(correct|incorrect))\b|\b(CORRECT|INCORRECT)\b")
PING = "Reply with the single word OK."  # the preflight's one-token request


@dataclass(frozen=True)
class Verdict:
    """The judge's decision: ``correct`` is None exactly when ``error`` says why there is none."""

    correct: bool | None
    error: str | None = None
    cached: bool = False


def parse_verdict(reply: str | None) -> bool | None:
    """True for CORRECT, False for INCORRECT, None for a malformed reply (see the module docstring)."""
    text = reply or ""
    end = reasoning_end(text)
    if end is None:
        return None  # reasoning cut off before any verdict
    text = text[end:]
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    last = _VERDICT_LINE.fullmatch(lines[-1])
    if not last:
        return None
    word = last.group(1).upper()
    if any((m.group(1) or m.group(2)).upper() != word for m in _ANY_VERDICT.finditer(text)):
        return None  # contradicts itself
    return word == "CORRECT"


def resolve_api_key() -> str:
    """``$MEDREASON_JUDGE_API_KEY``, else ``$OPENAI_API_KEY``, else "EMPTY" (local servers need none)."""
    return next((os.environ[name] for name in API_KEY_ENVS if os.environ.get(name)), "EMPTY")


def default_cache_dir() -> Path:
    """``$MEDREASON_JUDGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/lm_eval_medreason/judge`` (``~/.cache`` by default)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lm_eval_medreason" / "judge"


class VerdictCache:
    """One JSON file per key under ``directory``, written atomically. A verdict that cannot be written is
    kept in memory instead: an unwritable folder costs one warning and the next run's savings, never a verdict."""

    def __init__(self, directory: Path):
        self.directory = Path(directory).expanduser()
        self.memory: dict[str, dict] = {}
        self.write_error: str | None = None  # the first failed write, warned about once
        self._lock = threading.Lock()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        if key in self.memory:
            return self.memory[key]
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # absent, or a file damaged by hand: a miss
            return None

    def put(self, key: str, record: dict) -> None:
        """Keep ``record``; a failed disk write is warned about once per cache and never raised."""
        try:
            self._write(self._path(key), record)
        except OSError as err:
            self.memory[key] = record
            with self._lock:
                first, self.write_error = self.write_error is None, self.write_error or str(err)
            if first:
                log.warning(
                    "the judge cache cannot be written in %s (%s): this run keeps its verdicts in memory and "
                    "the next run asks the judge again; set judge_cache_dir (--metadata) or %s to a writable "
                    "folder, or to 'off'", self.directory, err.strerror or err, CACHE_ENV,
                )

    def check_writable(self) -> None:
        """Create the folder and write (then remove) a probe file, or raise ``JudgeSetupError`` naming the setting."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.directory, prefix=".tmp-check-", suffix=".json") as probe:
                probe.write(b"{}")
                probe.flush()
        except OSError as err:
            raise JudgeSetupError(
                f"judge_cache_dir {self.directory} is not writable ({err.strerror or err}); set judge_cache_dir "
                f"(--metadata) or {CACHE_ENV} to a writable folder, or to 'off' to grade without a cache"
            ) from None

    @staticmethod
    def _write(path: Path, record: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(record, handle, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class Judge:
    """Grades a free-form answer against the gold answer with an LLM (one instance serves many threads)."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        cache_dir: str | Path | None = None,
        max_retries: int = 5,
        timeout: float = 120.0,
        malformed_retries: int = 2,
        max_tokens: int | None = None,
    ):
        import openai

        if not model:
            raise ValueError("the judge needs a model name (--metadata judge_model or MEDREASON_JUDGE_MODEL)")
        self.model = model
        self.malformed_retries = malformed_retries
        self.max_tokens = max_tokens  # None: the server's default (room for a reasoning judge)
        self._api_key = api_key or resolve_api_key()
        self.client = openai.OpenAI(base_url=base_url, api_key=self._api_key, max_retries=max_retries, timeout=timeout)
        self.cache = None if str(cache_dir) == NO_CACHE else VerdictCache(cache_dir or default_cache_dir())

    def prompt(self, question: str, gold_answer: str, response_answer: str, full_response: str | None = None) -> str:
        return render(
            "judge.j2",
            question=question,
            gold_answer=gold_answer,
            response_answer=response_answer,
            full_response=full_response,
        )

    def key(self, prompt: str) -> str:
        return hashlib.sha256(json.dumps([self.model, prompt]).encode("utf-8")).hexdigest()

    def grade(
        self, question: str, gold_answer: str, response_answer: str, full_response: str | None = None
    ) -> Verdict:
        """The verdict on ``response_answer``, from the cache or the API; never raises: grading runs after
        generation, so any failure is a judge error on this sample, not a lost run."""
        try:
            return self._grade(question, gold_answer, response_answer, full_response)
        except Exception as err:  # noqa: BLE001 - see the docstring
            return Verdict(None, scrub(f"{type(err).__name__}: {err}", self._api_key)[:500])

    def _grade(self, question: str, gold_answer: str, response_answer: str, full_response: str | None) -> Verdict:
        prompt = self.prompt(question, gold_answer, response_answer, full_response)
        key = self.key(prompt)
        cached = self.cache.get(key) if self.cache else None
        if cached and isinstance(cached.get("correct"), bool):
            return Verdict(cached["correct"], cached=True)
        messages = [{"role": "user", "content": prompt}]
        for _ in range(1 + self.malformed_retries):
            try:
                reply = self._ask(messages)
            except Exception as err:  # the SDK has already retried what is worth retrying
                return Verdict(None, scrub(f"{type(err).__name__}: {err}", self._api_key)[:500])
            correct = parse_verdict(reply)
            if correct is not None:
                if self.cache:
                    self.cache.put(key, {"model": self.model, "correct": correct, "reply": reply})
                return Verdict(correct)
            messages = [*messages[:1], {"role": "assistant", "content": reply or ""}, {"role": "user", "content": REPAIR}]
        return Verdict(None, scrub(f"MalformedVerdict: {(reply or '')[-200:]!r}", self._api_key))

    def _ask(self, messages: list[dict]) -> str | None:
        extra = {} if self.max_tokens is None else {"max_tokens": self.max_tokens}
        completion = self.client.chat.completions.create(model=self.model, messages=messages, temperature=0, **extra)
        return completion.choices[0].message.content

    def check(self) -> None:
        """The preflight: the cache folder is writable and the endpoint answers a one-token completion with
        this model and key; else ``JudgeSetupError`` naming the setting to fix (never the key itself)."""
        import openai

        if self.cache:
            self.cache.check_writable()
        try:
            self.client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": PING}], max_completion_tokens=1, temperature=0
            )
        except openai.APIStatusError as err:
            raise JudgeSetupError(self._failed(err, _advice(err.status_code))) from None
        except openai.APIError as err:  # connection refused, timeout, DNS, a reply that is not JSON
            raise JudgeSetupError(self._failed(
                err, "check judge_base_url (--metadata) or MEDREASON_JUDGE_BASE_URL: an OpenAI-compatible base URL "
                "such as http://host:8000/v1, of a server that is up"
            )) from None

    def _failed(self, err: Exception, advice: str) -> str:
        detail = " ".join(f"{type(err).__name__}: {err}".split())[:300]
        line = f"the LLM judge {self.model!r} at {self.client.base_url} did not answer a test request ({detail}); {advice}"
        return scrub(line, self._api_key)


def _advice(status: int) -> str:
    """What to fix for an HTTP error of the preflight request."""
    key = f"check the API key ({' or '.join(API_KEY_ENVS)})"
    if status == 401:
        return key
    if status == 403:
        return key + " and its access to this model"
    if status in (400, 404, 422):
        return ("check judge_model (--metadata) or MEDREASON_JUDGE_MODEL (a model this server serves) and "
                "judge_base_url (--metadata) or MEDREASON_JUDGE_BASE_URL")
    if status == 429:
        return "the judge's rate limit or quota is exhausted: wait, raise the quota, or lower judge_concurrency"
    return "the judge server is failing: check it, or judge_base_url (--metadata) or MEDREASON_JUDGE_BASE_URL"
