"""SFT data for `medreason train`: JSONL of chat ``messages`` in, TRL prompt-completion examples out.

Each line needs ``messages``: a list of ``{role, content}`` ending with the assistant turn
(what `medreason distill` writes; other keys are ignored). The last turn becomes the
completion and every turn before it the prompt, so TRL's completion-only loss trains on
the assistant turn alone. Lengths are counted with the student's own chat template, the
way TRL tokenizes, so that the max-length check sees exactly what training would.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from lm_eval_medreason.data.loaders import iter_jsonl
from lm_eval_medreason.errors import DataError

ROLES = ("system", "developer", "user", "assistant", "tool")


@dataclass(frozen=True)
class Longest:
    """The longest example of a data file, in the student's tokens."""

    position: str  # "line N"
    tokens: int


def read_sft_jsonl(path) -> tuple[list[dict], list[str]]:
    """The examples of ``path`` as ``{"prompt": [...], "completion": [assistant]}`` and each one's "line N"."""
    examples, positions = [], []
    for pos, record in iter_jsonl(path):
        where = f"{path} {pos}"
        messages = record.get("messages")
        if not isinstance(messages, list) or len(messages) < 2:
            raise DataError(f"{where}: needs 'messages', a list of at least two {{role, content}} turns (user, assistant)")
        for number, message in enumerate(messages, start=1):
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                raise DataError(f"{where}: message {number} needs a role among {', '.join(ROLES)}")
            if not isinstance(message.get("content"), str) or not message["content"].strip():
                raise DataError(f"{where}: message {number} ({message['role']}) has no text content")
        if messages[-1]["role"] != "assistant":
            raise DataError(f"{where}: the last message must be the assistant's (the turn that is trained on)")
        turns = [{"role": m["role"], "content": m["content"]} for m in messages]
        examples.append({"prompt": turns[:-1], "completion": turns[-1:]})
        positions.append(pos)
    if not examples:
        raise DataError(f"{path}: no examples")
    return examples, positions


def fingerprint(path) -> str:
    """The sha256 of the data file: the run record keeps it, so that a resume on other data is refused."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as err:
        raise DataError(f"{path}: cannot read the data file ({err.strerror})") from None


def token_lengths(tokenizer, examples: list[dict]) -> list[int]:
    """Tokens of each example rendered whole by ``tokenizer``'s chat template (prompt + completion)."""
    if not getattr(tokenizer, "chat_template", None):
        raise DataError(f"the tokenizer of {tokenizer.name_or_path} has no chat template; use an instruct model or set one")
    texts = tokenizer.apply_chat_template([e["prompt"] + e["completion"] for e in examples], tokenize=False)
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def check_max_length(path, positions: list[str], lengths: list[int], max_length: int | None) -> Longest:
    """The longest example; a DataError naming it when it is longer than ``max_length`` (nothing is ever cut)."""
    index = max(range(len(lengths)), key=lengths.__getitem__)
    longest = Longest(positions[index], lengths[index])
    if max_length is not None and longest.tokens > max_length:
        too_long = sum(n > max_length for n in lengths)
        raise DataError(
            f"{Path(path)} {longest.position}: {longest.tokens} tokens, longer than max_length {max_length} "
            f"({too_long} of {len(lengths)} examples are); raise --max_length or remove them, nothing is truncated"
        )
    return longest
