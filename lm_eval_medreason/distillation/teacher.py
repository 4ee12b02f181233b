"""Teacher API calls through ``openai.AsyncOpenAI``: concurrency, rate limits, retries, o1-style requests.

- Concurrency: at most ``concurrency`` requests in flight (an asyncio semaphore).
- Rate limits: two token buckets, requests per minute and tokens per minute. A bucket holds
  at most one minute's allowance and refills continuously; a request waits until both
  buckets hold what it needs. A request's token cost is estimated before it is sent (its
  prompt tokens + ``expected_completion``) and corrected by the usage the API reports, so the
  bucket tracks what the server counts. 0 disables a limit.
- Retries: the SDK retries HTTP 408/409/429/5xx, connection errors and timeouts itself
  (``max_retries``, exponential backoff 0.5 s to 8 s with jitter, honouring ``Retry-After`` and
  ``retry-after-ms`` up to 120 s). A 200 whose body is not a valid completion is retried here,
  with the same backoff, and so is a reply stopped by a content filter (it may pass when asked
  again; after the retries it is a final ``content_filter`` drop). ``timeout`` is the per-request
  timeout in seconds.
- Reasoning (o1-style) models, names starting ``o1``/``o3``/``o4`` or ``reasoning=True``: no
  system message (a system text is folded into the user message), ``max_completion_tokens``
  instead of ``max_tokens``, no temperature.
- HTTP: the SDK's aiohttp transport (``openai.DefaultAioHttpClient``, which its README recommends
  for concurrency): less CPU per request than its default httpx transport, so one process keeps
  up with more requests in flight (``benchmarks/README.md``; proxies from ``HTTP(S)_PROXY`` apply
  to both).
  ``http_client="httpx"`` picks the SDK's default instead.
- ``processes`` > 1 spreads the HTTP calls (the SDK's CPU per request caps the requests per
  second of one process) over helper processes (``pool``); limits, selection and
  writing stay in the main process.
- Failures: ``TeacherError`` for one request that failed after the retries (``final`` when it is
  a verdict on the reply, e.g. a content filter; transport and server errors are not final);
  ``TeacherFatal`` when the API refuses the run itself (HTTP 401, 403, 404, an unknown model):
  no request can succeed until the key, ``--base-url`` or ``--model`` is fixed, so the caller
  stops everything and records nothing.
- The API key is never written anywhere: ``errors.scrub`` removes it from every error message.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

from lm_eval_medreason.errors import TeacherError, TeacherFatal, one_line, scrub

REASONING_PREFIXES = ("o1", "o3", "o4")


def api_key() -> str:
    """``$OPENAI_API_KEY``, else "EMPTY" (local servers need none)."""
    return os.environ.get("OPENAI_API_KEY") or "EMPTY"


def is_reasoning_model(model: str) -> bool:
    """o1-style models: the name (after any ``provider/`` prefix) starts with o1, o3 or o4."""
    return model.rsplit("/", 1)[-1].lower().startswith(REASONING_PREFIXES)


class TokenBucket:
    """A bucket of ``per_minute`` units that refills continuously; ``take`` waits until enough are there."""

    def __init__(self, per_minute: float):
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.level = self.capacity
        self.stamp = time.monotonic()
        self.lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    async def take(self, amount: float) -> None:
        amount = min(amount, self.capacity)  # a request larger than a minute's allowance waits for a full bucket
        async with self.lock:  # first come, first served
            while True:
                self._refill()
                if self.level >= amount:
                    self.level -= amount
                    return
                await asyncio.sleep((amount - self.level) / self.rate)

    def adjust(self, amount: float) -> None:
        """Correct an earlier estimate by ``amount`` (positive: more was used); the level may go negative."""
        self._refill()
        self.level = min(self.capacity, self.level - amount)


@dataclass
class Reply:
    """One completion: text, finish reason and usage (reasoning tokens where the API reports them)."""

    text: str | None
    finish_reason: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0


def status_error(err, model: str, base_url: str | None) -> Exception:
    """The ``TeacherError`` or ``TeacherFatal`` for an ``openai.APIStatusError`` (after the SDK's retries)."""
    body = err.body if isinstance(err.body, dict) else {}  # the SDK passes the inner "error" object
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    return http_error(err.status_code, error, model, base_url, one_line(err))


def http_error(status: int, error: dict, model: str, base_url: str | None, fallback: str = "") -> Exception:
    """An HTTP error status and its ``{"message", "code"}``: ``TeacherFatal`` when it refuses the run itself
    (key, permission, URL, model), else a ``TeacherError`` (final only for a content filter)."""
    where = base_url or "the OpenAI API"
    code = str(error.get("code") or "")
    text = str(error.get("message") or "").strip()
    detail = scrub(text.splitlines()[0][:200]) if text else fallback or "no message"
    lowered = text.lower()
    unknown_model = code == "model_not_found" or ("model" in lowered and any(
        s in lowered for s in ("not found", "does not exist", "unknown", "no such", "invalid model")))
    if status == 401:
        return TeacherFatal(f"{where} refused the API key (HTTP 401: {detail}): set OPENAI_API_KEY to a valid key")
    if status == 403:
        return TeacherFatal(f"{where} denied access (HTTP 403: {detail}): use a key (OPENAI_API_KEY) allowed to use "
                            f"model {model}, or another --model")
    if unknown_model and status in (400, 404):
        return TeacherFatal(f"{where} does not know model {model!r} (HTTP {status}: {detail}): check --model")
    if status == 404:
        return TeacherFatal(f"{where}/chat/completions not found (HTTP 404: {detail}): check --base-url (an "
                            "OpenAI-compatible endpoint usually ends in /v1)")
    if code == "content_filter":  # a prompt the provider's filter refuses (Azure): a verdict on the case
        return TeacherError(f"HTTP {status}: {detail}", final=True, kind="content_filter")
    return TeacherError(f"HTTP {status}: {detail}")


@dataclass
class Teacher:
    model: str
    base_url: str | None = None
    concurrency: int = 16
    rpm: float = 0
    tpm: float = 0
    max_retries: int = 5
    timeout: float = 600.0
    max_tokens: int | None = None
    temperature: float | None = None
    reasoning: bool | None = None
    system: str | None = None
    expected_completion: int = 1000
    processes: int = 1  # > 1: the HTTP calls run in this many helper processes (pool)
    http_client: str = "aiohttp"  # or "httpx", the SDK's default transport

    def __post_init__(self):
        if self.reasoning is None:
            self.reasoning = is_reasoning_model(self.model)
        if self.http_client not in ("aiohttp", "httpx"):
            raise ValueError(f"http_client must be aiohttp or httpx, not {self.http_client!r}")
        for name in ("concurrency", "processes"):  # 0 would wait forever for a free slot
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        for name in ("rpm", "tpm", "max_retries"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, not {getattr(self, name)}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, not {self.timeout}")

    async def __aenter__(self) -> "Teacher":
        """Open the client (or the helper processes), the semaphore and the buckets inside the running loop."""
        import openai

        self.pool = None
        if self.processes > 1:
            from lm_eval_medreason.distillation.pool import ProcessPool

            self.pool = ProcessPool(self.processes, Teacher, self.config())

        self.client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=api_key(), max_retries=self.max_retries, timeout=self.timeout,
            http_client=openai.DefaultAioHttpClient() if self.http_client == "aiohttp" else None,
        )
        self.semaphore = asyncio.Semaphore(self.concurrency)
        self.refused: TeacherFatal | None = None  # once the API refuses the run, no request is sent any more
        self.requests = TokenBucket(self.rpm) if self.rpm else None
        self.tokens = TokenBucket(self.tpm) if self.tpm else None
        return self

    async def __aexit__(self, *exc) -> None:
        if self.pool:
            self.pool.close()
        await self.client.close()

    def settings(self) -> dict:
        """The generation settings that go into a trace's stable id."""
        return {"max_tokens": self.max_tokens, "temperature": self.temperature, "reasoning": self.reasoning,
                "system": self.system}

    def request(self, prompt: str) -> dict:
        """The chat.completions.create arguments for one user prompt."""
        if self.reasoning:
            content = f"{self.system}\n\n{prompt}" if self.system else prompt
            body = {"model": self.model, "messages": [{"role": "user", "content": content}]}
            if self.max_tokens:
                body["max_completion_tokens"] = self.max_tokens
            return body
        messages = [{"role": "system", "content": self.system}] if self.system else []
        body = {"model": self.model, "messages": [*messages, {"role": "user", "content": prompt}]}
        if self.max_tokens:
            body["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            body["temperature"] = self.temperature
        return body

    async def ask(self, prompt: str, custom_id: str | None = None) -> Reply:
        """One completion, within the limits; raises TeacherError once retries are spent."""
        from lm_eval_medreason.tokens import count_tokens

        estimate = (count_tokens(prompt) + self.expected_completion) if self.tokens else 0
        if self.requests:
            await self.requests.take(1)
        if self.tokens:
            await self.tokens.take(estimate)
        body = self.request(prompt)
        async with self.semaphore:
            if self.refused:
                raise self.refused
            try:
                reply = await (self.pool.call(body) if self.pool else self.call(body))
            except TeacherFatal as err:
                self.refused = err
                raise
        if self.tokens:
            self.tokens.adjust(reply.prompt_tokens + reply.completion_tokens - estimate if reply.prompt_tokens else 0)
        return reply


    async def call(self, body: dict) -> Reply:
        """Send one request. The SDK retries transport and HTTP errors; here, with the same backoff, a body
        that is not a completion, and a content filter (a filtered reply may pass when asked again)."""
        import openai

        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                # The SDK's generic request method ("custom requests" in its README): the same retries,
                # timeouts and errors as chat.completions.create, without its per-request typed
                # transform and model parsing (CPU per request: see benchmarks/README.md).
                reply = read_reply(JsonObject(await self.client.post("/chat/completions", body=body, cast_to=dict)))
                if reply.finish_reason != "content_filter" or last:
                    return reply
            except (ValueError, TypeError, AttributeError, IndexError, openai.APIResponseValidationError) as err:
                if last:
                    raise TeacherError(f"malformed response: {one_line(err)}", kind="malformed_response") from None
            except openai.APIStatusError as err:  # after the SDK's retries of 408/409/429/5xx
                error = status_error(err, self.model, self.base_url)
                if last or not (isinstance(error, TeacherError) and error.kind == "content_filter"):
                    raise error from None
            except openai.APIError as err:  # connection errors and timeouts, after the SDK's retries
                raise TeacherError(one_line(err)) from None
            await asyncio.sleep(min(0.5 * 2**attempt, 8.0))
        raise AssertionError("unreachable")

    def config(self) -> dict:
        """What a helper process needs to build the same teacher (never the API key: it reads the environment)."""
        names = ("model", "base_url", "concurrency", "max_retries", "timeout", "max_tokens", "temperature",
                 "reasoning", "system", "http_client")
        return {name: getattr(self, name) for name in names}


def read_reply(completion) -> Reply:
    """Read text, finish reason and usage from a ChatCompletion; a body without a choice is malformed."""
    if not getattr(completion, "choices", None):
        raise ValueError("the response has no choices")
    choice = completion.choices[0]
    usage = getattr(completion, "usage", None)
    details = getattr(usage, "completion_tokens_details", None)
    return Reply(
        text=choice.message.content if choice.message else None,
        finish_reason=choice.finish_reason,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        reasoning_tokens=int(getattr(details, "reasoning_tokens", 0) or 0),
    )


class JsonObject:
    """Attribute access over a JSON object, as ``read_reply`` reads a ChatCompletion (missing keys are None)."""

    def __init__(self, data):
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        self._data = data

    def __getattr__(self, name):
        value = self._data.get(name)
        if isinstance(value, dict):
            return JsonObject(value)
        if isinstance(value, list):
            return [JsonObject(v) if isinstance(v, dict) else v for v in value]
        return value
