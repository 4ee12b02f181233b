"""maj@k and pass@k against brute-force enumeration of every subset."""

from collections import Counter
from fractions import Fraction
from itertools import combinations
from math import comb

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_eval_medreason.evaluation.voting import maj_at_k, pass_at_k, vote_metrics


def brute_force_maj(votes, gold, k) -> Fraction:
    """Average over all C(n, k) subsets of the chance that the vote picks gold (ties broken at random)."""
    total = Fraction(0)
    for subset in combinations(range(len(votes)), k):
        counts = Counter(votes[i] for i in subset if votes[i] is not None)
        if not counts:
            continue
        top = max(counts.values())
        leaders = [letter for letter, c in counts.items() if c == top]
        if gold in leaders:
            total += Fraction(1, len(leaders))
    return total / comb(len(votes), k)


def brute_force_pass(votes, gold, k) -> Fraction:
    hits = sum(any(votes[i] == gold for i in s) for s in combinations(range(len(votes)), k))
    return Fraction(hits, comb(len(votes), k))


votes_strategy = st.lists(st.sampled_from(["A", "B", "C", "D", None]), min_size=1, max_size=10)


@settings(max_examples=300, deadline=None)
@given(votes=votes_strategy, gold=st.sampled_from("ABCD"), data=st.data())
def test_maj_and_pass_equal_brute_force(votes, gold, data):
    k = data.draw(st.integers(1, len(votes)))
    assert maj_at_k(votes, gold, k) == pytest.approx(float(brute_force_maj(votes, gold, k)), abs=1e-12)
    correct = sum(v == gold for v in votes)
    assert pass_at_k(len(votes), correct, k) == pytest.approx(float(brute_force_pass(votes, gold, k)), abs=1e-12)


@pytest.mark.parametrize(
    ("votes", "k", "expected"),
    [
        (["A", "B"], 2, 0.5),  # a two-way tie: half a vote
        (["A", "A", "B"], 3, 1.0),
        (["A", None, None], 2, 2 / 3),  # no-answer samples do not vote: A wins whenever it is drawn
        ([None, None, "B"], 2, 0.0),
        (["A", "B", "B", None], 1, 0.25),  # maj@1 is the plain accuracy
        (["A", "B", "C"], 3, 1 / 3),  # a three-way tie
    ],
)
def test_tie_and_no_answer_rules(votes, k, expected):
    assert maj_at_k(votes, "A", k) == pytest.approx(expected)


def test_curve_of_32_samples_matches_known_values():
    votes = ["A"] * 12 + ["B"] * 10 + ["C"] * 6 + [None] * 4
    metrics = vote_metrics(votes, "A")
    assert metrics["maj@1"] == pytest.approx(12 / 32)
    assert metrics["maj@32"] == 1.0  # all 32 samples: A leads 12 to 10
    assert metrics["pass@32"] == 1.0 and metrics["pass@1"] == pytest.approx(12 / 32)
    assert metrics["maj@1"] < metrics["maj@4"] < metrics["maj@16"] < metrics["maj@32"]
    assert set(metrics) == {f"{m}@{k}" for m in ("maj", "pass") for k in (1, 2, 4, 8, 16, 32)}


def test_k_larger_than_the_samples_is_an_error():
    with pytest.raises(ValueError, match="maj@4 needs at least 4 samples"):
        maj_at_k(["A", "B"], "A", 4)


def test_fewer_samples_give_a_shorter_curve():
    assert set(vote_metrics(["A", "B", None, "A"], "A")) == {"maj@1", "maj@2", "maj@4", "pass@1", "pass@2", "pass@4"}
