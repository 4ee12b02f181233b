"""Majority-vote and pass@k curves from one set of n sampled answers per question.

``maj_at_k(votes, gold, k)`` is the expected accuracy of a plurality vote over k
answers drawn without replacement from the n sampled ones: the exact average over
all C(n, k) subsets, so it is an unbiased estimate of the accuracy of a k-vote
(the same U-statistic idea as the pass@k estimator of Chen et al., 2021).

Rules: a sample with no answer (``None``) does not vote. The letter with the most
votes wins; a tie among t leading letters is broken uniformly at random, so a
subset where the gold letter ties with t - 1 others counts 1/t. A subset in which no
sample answered counts 0.

It is computed without enumerating subsets: for each count a of gold votes in the
subset, a generating polynomial over the other letters counts the ways they stay at
or below a (tracking how many tie at a), and the no-answer samples fill the rest.

``pass_at_k(n, c, k) = 1 - C(n - c, k) / C(n, k)``: the chance that at least one of
k draws is right (Chen et al., 2021).
"""

from collections import Counter
from math import comb

VOTE_KS = (1, 2, 4, 8, 16, 32)


def _ways_others_at_most(counts: list[int], a: int, limit: int) -> list[list[int]]:
    """ways[t][s]: subsets of s samples from the other letters, each letter drawn at most a times, t of them exactly a."""
    ways = [[1]]
    for c in counts:
        grown = [[0] * (limit + 1) for _ in range(len(ways) + 1)]
        for t, row in enumerate(ways):
            for s, w in enumerate(row):
                if not w:
                    continue
                for x in range(min(a - 1, c, limit - s) + 1):
                    grown[t][s + x] += w * comb(c, x)
                if c >= a and s + a <= limit:
                    grown[t + 1][s + a] += w * comb(c, a)
        ways = grown
    return ways


def maj_at_k(votes: list[str | None], gold: str, k: int) -> float:
    """Expected accuracy of a k-vote drawn without replacement from ``votes`` (see the module docstring)."""
    n = len(votes)
    if not 1 <= k <= n:
        raise ValueError(f"maj@{k} needs at least {k} samples, got {n}")
    counts = Counter(v for v in votes if v is not None)
    unanswered = n - sum(counts.values())
    gold_votes = counts.pop(gold, 0)
    others = list(counts.values())
    favourable = 0.0
    for a in range(1, min(gold_votes, k) + 1):
        rest = k - a
        ways = _ways_others_at_most(others, a, rest)
        for t, row in enumerate(ways):
            for s, w in enumerate(row):
                if w and rest - s <= unanswered:
                    favourable += comb(gold_votes, a) * w * comb(unanswered, rest - s) / (t + 1)
    return favourable / comb(n, k)


def pass_at_k(n: int, correct: int, k: int) -> float:
    """Unbiased pass@k from n samples of which ``correct`` are right."""
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    return 1.0 - comb(n - correct, k) / comb(n, k)


def vote_metrics(votes: list[str | None], gold: str, ks=VOTE_KS) -> dict[str, float]:
    """maj@k and pass@k for every k in ``ks`` up to the number of samples (a task with fewer
    ``repeats`` than 32 gets a shorter curve)."""
    correct = sum(v == gold for v in votes)
    metrics = {}
    for k in (k for k in ks if k <= len(votes)):
        metrics[f"maj@{k}"] = maj_at_k(votes, gold, k)
        metrics[f"pass@{k}"] = pass_at_k(len(votes), correct, k)
    return metrics
