"""Adaptive voting: stop sampling a question once more samples are unlikely to change its plurality answer.

The stopping rule is Adaptive-Consistency's Beta criterion (Aggarwal, Madaan, Yang and Mausam, "Let's
Sample Step by Step: Adaptive-Consistency for Efficient Reasoning and Coding with LLMs", EMNLP 2023,
section 3.2). With ``v1`` and ``v2`` the votes of the two leading answers, the leader's share of their
probability mass, p1 / (p1 + p2), has the posterior Beta(v1 + 1, v2 + 1) under a uniform prior. The chance
that the leader is not the more likely answer, P(p1 <= p2), is the chance that more samples overturn the
plurality; sampling stops once it is at most ``threshold`` (the paper's confidence 0.95 is threshold 0.05).
For integer parameters that Beta probability is a binomial tail, computed exactly here:
``P(Beta(a, b) <= 1/2) = P(Binomial(a + b - 1, 1/2) >= a)``.

The rule is checked after every round of ``round_size`` samples (the paper checks after every sample:
``round_size`` 1) and at most ``max_samples`` are drawn. A sample with no answer does not vote (as in
``voting``); the final vote is the plurality of the samples drawn, a tie counted 1/t as in ``voting.maj_at_k``.

The same rule serves three places: the ``medreason`` model wrapper (which sends no request for a question
after it stopped), the ``_adaptive`` tasks' scoring (which replays it over the logged samples in order, so
a plain backend scores the same way, without the savings), and the report (which replays it over random
orders of a ``_maj`` run's 32 samples: what adaptive voting would have cost there).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from functools import lru_cache
from math import comb

from lm_eval_medreason.evaluation.voting import maj_at_k

# What the wrapper returns for a sample it did not draw because the question's vote had stopped
# (lm-eval expects one response per request; this one is never scored).
NOT_DRAWN = "[medreason: not drawn: this question's adaptive vote had already stopped]"
THRESHOLD_KEY = "adaptive_threshold"
ROUND_KEY = "adaptive_round"
# Thresholds the report replays a `_maj` run under.
REPORT_THRESHOLDS = (0.2, 0.1, 0.05, 0.01, 0.001)


@lru_cache(maxsize=None)
def change_probability(v1: int, v2: int) -> float:
    """P(p1 <= p2) under Beta(v1 + 1, v2 + 1): the chance that the leader (v1 votes) is not the more
    likely answer against the runner-up (v2 votes)."""
    n = v1 + v2 + 1
    return sum(comb(n, j) for j in range(v1 + 1, n + 1)) / 2**n


@dataclass(frozen=True)
class Rule:
    """When to stop sampling one question (see the module docstring)."""

    threshold: float = 0.05
    round_size: int = 4
    max_samples: int = 32

    def __post_init__(self):
        if not 0 < self.threshold < 1:
            raise ValueError(f"--metadata {THRESHOLD_KEY} must be between 0 and 1 (exclusive), got {self.threshold!r}")
        if not 1 <= self.round_size <= self.max_samples:
            raise ValueError(f"--metadata {ROUND_KEY} must be between 1 and {self.max_samples}, got {self.round_size!r}")

    @classmethod
    def from_metadata(cls, metadata: dict, max_samples: int) -> Rule:
        """The rule a task's metadata (``--metadata``) asks for; a bad value is a one-line error naming the key."""
        threshold = metadata.get(THRESHOLD_KEY, cls.threshold)
        round_size = metadata.get(ROUND_KEY, cls.round_size)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise ValueError(f"--metadata {THRESHOLD_KEY} must be a number such as 0.05, got {threshold!r}")
        if isinstance(round_size, bool) or not isinstance(round_size, int):
            raise ValueError(f"--metadata {ROUND_KEY} must be a whole number of samples such as 4, got {round_size!r}")
        return cls(float(threshold), round_size, max_samples)

    def as_column(self) -> dict:
        return {"mode": "adaptive", **asdict(self)}

    def next_round(self, drawn: int) -> int:
        """How many samples the next round draws after ``drawn``."""
        return min(self.round_size, self.max_samples - drawn)

    def stops(self, votes: list[str | None]) -> bool:
        """Whether sampling stops after these votes (checked at the end of a round)."""
        if len(votes) >= self.max_samples:
            return True
        counts = sorted(Counter(v for v in votes if v is not None).values(), reverse=True) + [0, 0]
        return counts[0] > 0 and change_probability(counts[0], counts[1]) <= self.threshold

    def stop_point(self, votes: list[str | None]) -> int:
        """How many of these samples, taken in order, the rule draws: the first round end at which it stops.

        ``votes`` must reach that point (a plain backend's 32 always do; the wrapper's drawn samples end there)."""
        drawn = 0
        while True:
            drawn += self.next_round(drawn)
            if drawn > len(votes):
                raise ValueError(f"the adaptive rule needs sample {drawn} but only {len(votes)} were drawn")
            if self.stops(votes[:drawn]):
                return drawn


def vote_accuracy(votes: list[str | None], gold: str) -> float:
    """The plurality of ``votes`` against gold: a tie among t leaders counts 1/t, no answer at all counts 0
    (``voting.maj_at_k`` with k = all of them, without its subset counting)."""
    counts = Counter(v for v in votes if v is not None)
    if not counts:
        return 0.0
    top = max(counts.values())
    leaders = [letter for letter, c in counts.items() if c == top]
    return 1 / len(leaders) if gold in leaders else 0.0


def replay_orders(votes: list[str | None], gold: str, thresholds=REPORT_THRESHOLDS, orders: int = 200,
                  seed: int = 0, round_size: int = Rule.round_size) -> dict[float, tuple[float, float]]:
    """Expected (samples drawn, accuracy) of adaptive voting over ``orders`` random orders of one question's
    logged samples, for each threshold: the offline answer to "what would adaptive voting have cost here".

    Vectorised over the orders (a report replays thousands of questions): the vote counts at every round
    end of every order, then per threshold the first round end at which ``Rule.stops`` would stop."""
    import numpy as np

    n = len(votes)
    letters = sorted({v for v in votes if v is not None})
    if not letters:  # nobody answered: every order runs to the end and scores 0
        return {t: (float(n), 0.0) for t in thresholds}
    code = np.array([letters.index(v) if v is not None else -1 for v in votes])
    order = np.argsort(np.random.default_rng(seed).random((orders, n)), axis=1)
    onehot = (code[order][:, :, None] == np.arange(len(letters))).astype(np.int32)
    rule = Rule(thresholds[0], min(round_size, n), n)
    ends = []
    while not ends or ends[-1] < n:
        ends.append((ends[-1] if ends else 0) + rule.next_round(ends[-1] if ends else 0))
    counts = onehot.cumsum(axis=1)[:, np.array(ends) - 1, :]  # orders x round ends x letters
    ranked = -np.sort(-counts, axis=2)
    top, second = ranked[:, :, 0], (ranked[:, :, 1] if len(letters) > 1 else np.zeros_like(ranked[:, :, 0]))
    leaders = (counts == top[:, :, None]) & (top[:, :, None] > 0)
    gold_share = (leaders[:, :, letters.index(gold)] / np.maximum(leaders.sum(axis=2), 1)
                  if gold in letters else np.zeros(top.shape))
    table = np.array([[change_probability(a, b) for b in range(n + 1)] for a in range(n + 1)])
    result = {}
    for threshold in thresholds:
        stop = (top > 0) & (table[top, second] <= threshold)
        stop[:, -1] = True
        first = stop.argmax(axis=1)
        rows = np.arange(orders)
        result[threshold] = (float(np.array(ends)[first].mean()), float(gold_share[rows, first].mean()))
    return result
