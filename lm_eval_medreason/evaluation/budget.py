"""The accuracy-vs-thinking-budget curve from one long generation per question (budget forcing).

For each budget B, a response that reaches B tokens of the model's own tokenizer is cut after its B-th token
and continued with a fixed answer-forcing suffix for a few tokens; a response that ended before B keeps
its own answer. This is the budget forcing of s1 (Muennighoff et al., 2025, "s1: Simple test-time scaling")
and m1 (Huang et al., 2025, "m1: Unleash the Potential of Test-Time Scaling for Medical Reasoning"), which
ran each budget as a separate generation: here every budget reuses the one full-budget response, so the
forced prompts share it as a prefix (cheap under vLLM's prefix caching).

The ``medreason`` model wrapper does the cutting and forcing and returns, for each question, an *envelope*
(JSON: the full response; per budget it cut at, the character offset of the cut and the forced
continuation; the settings it forced with); the ``_budget`` tasks' filter scores it. ``tokens@B`` counts
(tiktoken) the response the model had written within budget B (the cut, or all of it), not the few forced
answer tokens: the thinking budget spent, the x axis of s1's curves.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

DEFAULT_BUDGETS = (256, 512, 1024, 2048, 4096, 8192)
SUFFIX = "\n\nI have to answer now. The answer is ("
ANSWER_TOKENS = 8
BUDGETS_KEY = "budgets"
SUFFIX_KEY = "budget_suffix"
ANSWER_TOKENS_KEY = "budget_answer_tokens"
ENVELOPE = "medreason_budget"
# lm-eval backends whose prompt is plain text, so a prompt may end inside the assistant's turn.
CONTINUING_BACKENDS = ("hf", "vllm", "local-completions")
_CONTINUING_ALIASES = {"hf-auto": "hf", "huggingface": "hf", "openai-completions": "local-completions"}


def default_budgets(max_gen_toks: int) -> list[int]:
    """The default budgets up to a strategy's full budget."""
    return [b for b in DEFAULT_BUDGETS if b <= max_gen_toks]


def can_continue(backend: str) -> bool:
    """Whether an lm-eval backend (a ``--model`` name) can continue a cut assistant turn."""
    return _CONTINUING_ALIASES.get(backend, backend) in CONTINUING_BACKENDS


def cannot_continue_message(backend: str | None) -> str:
    needs = ", ".join(CONTINUING_BACKENDS)
    if backend is None:
        return (f"the _budget tasks need this package's model wrapper: run lm_eval --model medreason "
                f"--model_args base=BACKEND,... with BACKEND one of {needs}")
    return (f"the _budget tasks continue a cut response inside the assistant's turn, which backend {backend!r} "
            f"(a chat API) cannot: use base= one of {needs} in --model_args")


@dataclass(frozen=True)
class Settings:
    """The budgets of one ``_budget`` task and how an answer is forced (the doc column the wrapper reads)."""

    budgets: tuple[int, ...]
    suffix: str = SUFFIX
    answer_tokens: int = ANSWER_TOKENS

    @classmethod
    def from_metadata(cls, metadata: dict) -> Settings:
        """From a task's metadata (its YAML's default budgets, ``--metadata``); one-line errors name the key."""
        budgets = metadata.get(BUDGETS_KEY)
        if (not isinstance(budgets, (list, tuple)) or not budgets
                or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in budgets)):
            raise ValueError(f"--metadata {BUDGETS_KEY} must be a list of positive token counts such as "
                             f"[256, 512, 1024], got {budgets!r}")
        suffix = metadata.get(SUFFIX_KEY, SUFFIX)
        if not isinstance(suffix, str) or not suffix.strip():
            raise ValueError(f"--metadata {SUFFIX_KEY} must be a non-empty text, got {suffix!r}")
        answer_tokens = metadata.get(ANSWER_TOKENS_KEY, ANSWER_TOKENS)
        if isinstance(answer_tokens, bool) or not isinstance(answer_tokens, int) or answer_tokens < 1:
            raise ValueError(f"--metadata {ANSWER_TOKENS_KEY} must be a positive whole number, got {answer_tokens!r}")
        return cls(tuple(sorted(set(budgets))), suffix, answer_tokens)

    def as_column(self) -> dict:
        return {"mode": "budget", **asdict(self), "budgets": list(self.budgets)}

    @classmethod
    def from_column(cls, column: dict) -> Settings | None:
        """The inverse of ``as_column`` (a doc's ``medreason_scaling``, an envelope's settings); None if incomplete."""
        try:
            return cls(tuple(column["budgets"]), column["suffix"], column["answer_tokens"])
        except (KeyError, TypeError):
            return None


def cut_offsets(response: str, tokenizer, budgets) -> dict[int, int]:
    """Budget -> the character offset after the response's B-th token, for every budget the response reaches
    (in tokens of ``tokenizer``, a Hugging Face tokenizer). A response of exactly B tokens did not end within B
    (its end of turn would be token B + 1, or ``max_gen_toks`` stopped it there), so it is forced too, as in s1."""
    try:
        encoded = tokenizer(response, add_special_tokens=False, return_offsets_mapping=True)
        ends = [end for _, end in encoded["offset_mapping"]]
    except (NotImplementedError, KeyError, TypeError):  # a slow tokenizer: decode growing prefixes
        ids = tokenizer(response, add_special_tokens=False)["input_ids"]
        ends = [len(tokenizer.decode(ids[:i + 1])) for i in range(len(ids))]
    return {b: ends[b - 1] for b in budgets if len(ends) >= b}


def forced_prompt(context: str, response: str, cut: int, settings: Settings) -> str:
    """The prompt that forces an answer at a budget: the original prompt, the cut response, the suffix."""
    return context + response[:cut] + settings.suffix


def pack(response: str, forced: dict[int, tuple[int, str]], settings: Settings) -> str:
    """The envelope the wrapper returns: the full response, per budget it cut at (offset, continuation), and the
    settings it cut and forced with (lm-eval's ``--use_cache`` may hand it to a later run with other settings)."""
    return json.dumps({ENVELOPE: 1, "response": response,
                       "forced": {str(b): {"cut": cut, "continuation": text} for b, (cut, text) in forced.items()},
                       "settings": settings.as_column()},
                      ensure_ascii=False)


def unpack(text: str, expected: Settings | None = None) -> tuple[str, dict[int, tuple[int, str]]]:
    """The inverse of ``pack``; anything else (a plain backend's response), or an envelope forced with settings
    other than ``expected``, is a one-line error."""
    try:
        envelope = json.loads(text) if text and text.startswith("{") else None
    except json.JSONDecodeError:
        envelope = None
    if not isinstance(envelope, dict) or envelope.get(ENVELOPE) != 1:
        raise ValueError(cannot_continue_message(None))
    if expected is not None and Settings.from_column(envelope.get("settings") or {}) != expected:
        made = envelope.get("settings") or {}
        raise ValueError(f"a _budget response was forced with budgets {made.get('budgets')}, suffix "
                         f"{made.get('suffix')!r} and {made.get('answer_tokens')} answer tokens, but the task asks "
                         f"for {list(expected.budgets)}, {expected.suffix!r} and {expected.answer_tokens}: it came "
                         "from lm-eval's --use_cache database of a run with other settings; rerun with a new "
                         "--use_cache path or without it")
    forced = {int(b): (f["cut"], f["continuation"]) for b, f in envelope["forced"].items()}
    return envelope["response"], forced
