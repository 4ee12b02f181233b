"""A scripted OpenAI-compatible chat server whose sampled answers follow a fixed sequence per question.

For the adaptive-voting tests and benchmark: each question has a ``Profile`` (the chances of its gold letter,
of its wrong letters, strongest first, and of no answer) from which its sequence of ``length`` answers is
drawn once, seeded by the question's id. The k-th sampled request (temperature > 0) for a question gets the
k-th answer of its sequence, so a ``_maj`` run and an ``_adaptive`` run see the same sequences, and a test
knows exactly what the model said. Greedy requests (temperature 0: the plain tasks) get the profile's most
likely answer and are counted apart (so the script reads the whole request body, which fake_openai's
``fake_chat_server`` hands it with ``whole_body``). A question is recognised by its question block
(case text, then the lettered options, as ``prompts/question.j2`` renders it) in the prompt.

    script = VoteScript(cases, lambda i, case: HARD if i % 3 == 2 else EASY)
    with vote_server(script) as url:   # lm-eval's local-chat-completions base_url
        ...
    script.sampled[case["id"]]         # sampled requests that question received
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass

from tests.support.fake_openai import Reply, fake_chat_server


@dataclass(frozen=True)
class Profile:
    """One question's answer distribution: P(gold), P(each wrong letter, strongest first); the rest: no answer."""

    gold: float
    wrong: tuple[float, ...] = ()

    def __post_init__(self):
        if min(self.gold, *self.wrong) < 0 or self.gold + sum(self.wrong) > 1 + 1e-12:
            raise ValueError(f"not a distribution: {self}")


EASY = Profile(0.95, (0.04,))               # answered consistently, gold almost always
MEDIUM = Profile(0.65, (0.25, 0.08))        # gold leads, one strong distractor
HARD = Profile(0.35, (0.45, 0.15))          # split, a distractor leads
UNSURE = Profile(0.3, (0.3,))               # split two ways, often no answer
SPREAD = Profile(0.6, (0.15, 0.15, 0.1))    # gold leads; the rest spread over every distractor


def question_block(case: dict) -> str:
    """The case text and lettered options as the prompts show them."""
    options = "".join(f"{letter}. {text.strip()}\n" for letter, text in case["options"].items() if text is not None)
    return f"{case['question'].strip()}\n\n{options}"


def sample_text(k: int, letter: str | None) -> str:
    """The k-th sampled response (k from 1): a line whose length varies with k, then the answer or a refusal."""
    lead = "Let me check again. " * (k % 3) + f"Sample {k}."
    if letter is None:
        return f"{lead} Hmm, I am not sure; several options fit."
    return f"{lead}\n\nThe answer is ({letter})."


def greedy_text(letter: str | None) -> str:
    """The one response to a greedy request."""
    return f"Reading the case once.\n\nThe answer is ({letter})." if letter else "Several options fit."


class VoteScript:
    """The sequences of ``cases`` (``profile_of(index, case) -> Profile``) and the requests received."""

    def __init__(self, cases: list[dict], profile_of, seed: int = 0, length: int = 32):
        self.cases: dict[str, dict] = {}
        self.sequences: dict[str, list[str | None]] = {}
        self.greedy: dict[str, str | None] = {}
        self.sampled: Counter = Counter()          # case id -> sampled requests received
        self.greedy_requests: Counter = Counter()  # case id -> greedy requests received
        self.arrivals: list[tuple[str, int]] = []  # (case id, k) of each sampled request, in arrival order
        self.received = 0                           # every request, recognised or not
        self._blocks: dict[str, str] = {}
        self._lock = threading.Lock()
        for i, case in enumerate(cases):
            block = question_block(case)
            if case["id"] in self.cases or block in self._blocks:
                raise ValueError(f"two cases share the id or question block of case {case['id']!r}")
            self.cases[case["id"]] = case
            self._blocks[block] = case["id"]
            profile = profile_of(i, case)
            rng = random.Random(f"{seed}:{case['id']}")
            wrong = [letter for letter, text in case["options"].items()
                     if text is not None and letter != case["answer_idx"]]
            rng.shuffle(wrong)
            letters = [case["answer_idx"], *wrong[: len(profile.wrong)]]
            weights = [profile.gold, *profile.wrong[: len(wrong)]]
            self.sequences[case["id"]] = [_draw(rng.random(), letters, weights) for _ in range(length)]
            best = max(range(len(weights)), key=lambda j: weights[j])
            self.greedy[case["id"]] = letters[best] if weights[best] >= 1 - sum(weights) else None

    def case_of(self, prompt: str) -> str:
        found = [case_id for block, case_id in self._blocks.items() if block in prompt]
        if len(found) != 1:
            raise ValueError(f"the prompt matches {len(found)} scripted questions: {prompt[:200]!r}")
        return found[0]

    def reply(self, body: dict) -> str:
        """The answer to one request; a ValueError (unknown question, too many samples) becomes an HTTP 400."""
        with self._lock:
            self.received += 1
        case_id = self.case_of(body["messages"][-1]["content"])
        if not body.get("temperature"):
            with self._lock:
                self.greedy_requests[case_id] += 1
            return greedy_text(self.greedy[case_id])
        with self._lock:
            k = self.sampled[case_id] = self.sampled[case_id] + 1
            self.arrivals.append((case_id, k))
        sequence = self.sequences[case_id]
        if k > len(sequence):
            raise ValueError(f"sample {k} of question {case_id}: only {len(sequence)} are scripted")
        return sample_text(k, sequence[k - 1])


def _draw(u: float, letters: list[str], weights: list[float]) -> str | None:
    for letter, weight in zip(letters, weights):
        if u < weight:
            return letter
        u -= weight
    return None


@contextmanager
def vote_server(script: VoteScript):
    """Serve ``/v1/chat/completions`` from ``script``; yield the endpoint URL (lm-eval's ``base_url``)."""

    def answer(body: dict):
        try:
            return script.reply(body)
        except ValueError as error:
            return Reply(400, body=json.dumps({"error": {"message": str(error)}}))

    with fake_chat_server(answer, whole_body=True) as (url, _):
        yield url
