"""Adaptive-Consistency's Beta stopping rule (lm_eval_medreason.evaluation.adaptive), pinned by second methods:
scipy's Beta distribution and numerical integration, hand-worked vote sequences, maj@k over all the votes, and
brute-force replays over permutations."""

import itertools
import random
from fractions import Fraction

import numpy as np
import pytest
from scipy import integrate, stats

from lm_eval_medreason.evaluation.adaptive import Rule, change_probability, replay_orders, vote_accuracy
from lm_eval_medreason.evaluation.voting import maj_at_k

# --- P(Beta(v1 + 1, v2 + 1) <= 1/2): the chance that more samples overturn the leader ----------------------


@pytest.mark.parametrize("v1,v2,by_hand", [
    # Beta(a, 1) has cdf x^a; Beta(a, 2) has cdf (a + 1) x^a - a x^(a + 1), (a + 2) / 2^(a + 1) at 1/2
    (4, 0, Fraction(1, 32)),
    (8, 0, Fraction(1, 512)),
    (3, 0, Fraction(1, 16)),
    (3, 1, Fraction(3, 16)),
    (7, 1, Fraction(5, 256)),
    (6, 1, Fraction(9, 256)),
    (0, 0, Fraction(1, 2)),   # uniform
    (5, 5, Fraction(1, 2)),   # symmetric
])
def test_change_probability_matches_hand_computed_values(v1, v2, by_hand):
    assert change_probability(v1, v2) == float(by_hand)


def test_change_probability_is_scipys_beta_cdf_at_one_half_for_every_count_up_to_32():
    for v1 in range(33):
        for v2 in range(33 - v1):
            expected = stats.beta.cdf(0.5, v1 + 1, v2 + 1)
            assert change_probability(v1, v2) == pytest.approx(expected, rel=1e-9, abs=1e-300), (v1, v2)


@pytest.mark.parametrize("v1,v2", [(4, 0), (5, 2), (9, 3), (12, 10), (20, 4)])
def test_change_probability_is_the_integral_of_the_beta_density(v1, v2):
    integral, error = integrate.quad(stats.beta(v1 + 1, v2 + 1).pdf, 0, 0.5, epsabs=1e-14)
    assert error < 1e-10
    assert change_probability(v1, v2) == pytest.approx(integral, rel=1e-7, abs=1e-12)


# --- where sampling stops: hand-worked sequences (P values from the cases above) ---------------------------

ALL_A = list("A" * 32)
ONE_B = list("AB") + list("A" * 30)


@pytest.mark.parametrize("votes,rule,stop", [
    (ALL_A, Rule(), 4),                             # 4-0 at 4: 1/32 <= 0.05
    (list("AAAB") + ALL_A[:28], Rule(), 8),         # 3-1 at 4: 3/16; 7-1 at 8: 5/256
    (ALL_A, Rule(threshold=0.01), 8),               # 4-0 (1/32) is not enough at 0.01; 8-0 (1/512) is
    (list("AAAB") + ALL_A[:28], Rule(threshold=0.01), 12),  # 7-1 (5/256) is not either; 11-1 (7/4096) is
    (list("AB" * 16), Rule(), 32),                  # a tie never stops: all 32 are drawn
    ([None] * 4 + ALL_A[:28], Rule(), 8),           # no answer does not vote: nothing to stop on at 4
    (list("AAA") + [None] + ALL_A[:28], Rule(), 8),  # 3-0 at 4 (1/16) goes on; 7-0 at 8 stops
    # the runner-up counts, not every other vote: 6-1-1 at 8 is 9/256 (6 against 2 would be 23/256)
    (list("AABC") + ALL_A[:28], Rule(), 8),
    (ONE_B, Rule(round_size=1), 7),                 # checked after every sample: 5-1 at 6 (1/16), 6-1 at 7 (9/256)
    (ALL_A, Rule(round_size=1), 4),                 # 1-0, 2-0, 3-0 (1/4, 1/8, 1/16) go on; 4-0 stops
    (ONE_B, Rule(round_size=3), 9),                 # checked at 3, 6, 9: 8-1 at 9 is 11/1024
    (ONE_B, Rule(round_size=4), 8),
])
def test_stop_points_of_hand_worked_sequences(votes, rule, stop):
    assert rule.stop_point(votes) == stop
    assert rule.stops(votes[:stop]) and not any(rule.stops(votes[:n]) for n in range(1, stop) if n % rule.round_size == 0)


@pytest.mark.parametrize("round_size,rounds", [(4, [4, 4, 2]), (3, [3, 3, 3, 1]), (1, [1] * 10), (10, [10])])
def test_rounds_end_at_max_samples_when_it_is_not_a_multiple_of_the_round(round_size, rounds):
    rule = Rule(round_size=round_size, max_samples=10)
    drawn, sizes = 0, []
    while drawn < 10:
        sizes.append(rule.next_round(drawn))
        drawn += sizes[-1]
    assert sizes == rounds
    assert rule.stop_point(list("AB" * 5)) == 10  # undecided, so it runs to max_samples, and no further
    assert rule.stops(list("AB" * 5)) and not rule.stops(list("AB" * 4))


def test_stop_point_needs_the_samples_up_to_the_next_round_end():
    with pytest.raises(ValueError, match="needs sample 8 but only 6 were drawn"):
        Rule().stop_point(list("AABBAB"))


# --- the vote: plurality of the drawn samples ------------------------------------------------------------


def test_vote_accuracy_is_maj_at_k_with_k_all_the_votes():
    rng = random.Random(11)
    for _ in range(400):
        n = rng.randint(1, 32)
        votes = rng.choices(["A", "B", "C", "D", None], weights=[4, 3, 2, 1, 1], k=n)
        gold = rng.choice("ABCD")
        assert vote_accuracy(votes, gold) == pytest.approx(maj_at_k(votes, gold, n), abs=1e-12), (votes, gold)


@pytest.mark.parametrize("votes,gold,acc", [
    (list("AAB"), "A", 1.0), (list("AAB"), "B", 0.0), (list("AB"), "A", 0.5), (list("ABC") + [None], "C", 1 / 3),
    ([None, None], "A", 0.0), (["B", None, None], "B", 1.0),
])
def test_vote_accuracy_by_hand(votes, gold, acc):
    assert vote_accuracy(votes, gold) == pytest.approx(acc)


# --- replaying the rule over random orders of a `_maj` run's samples ---------------------------------------


def brute_force_replay(votes, gold, thresholds, orders, seed, round_size):
    """The same permutations as replay_orders draws (numpy's argsort of uniform keys), replayed one by one."""
    n = len(votes)
    permutations = np.argsort(np.random.default_rng(seed).random((orders, n)), axis=1)
    result = {}
    for threshold in thresholds:
        rule = Rule(threshold, min(round_size, n), n)
        samples, accuracy = 0.0, 0.0
        for row in permutations:
            ordered = [votes[j] for j in row]
            stop = rule.stop_point(ordered)
            samples += stop
            accuracy += vote_accuracy(ordered[:stop], gold)
        result[threshold] = (samples / orders, accuracy / orders)
    return result


RNG = random.Random(5)
REPLAYS = [
    (RNG.choices(["A", "B", "C", None], weights=[6, 3, 1, 1], k=32), "A", 4),
    (RNG.choices(["A", "B", "C", None], weights=[4, 4, 1, 1], k=32), "B", 4),
    (RNG.choices(["B", "C", "D"], weights=[5, 4, 1], k=32), "A", 4),   # gold never answered
    (list("A" * 32), "A", 4),
    ([None] * 32, "A", 4),                                              # nobody answered
    (RNG.choices(["A", "B", None], k=10), "A", 3),                      # 10 samples, rounds of 3
    (["A", "B", "A"], "A", 4),                                          # fewer samples than a round
]


@pytest.mark.parametrize("votes,gold,round_size", REPLAYS)
def test_replay_orders_equals_a_brute_force_replay_of_the_same_permutations(votes, gold, round_size):
    thresholds = (0.2, 0.1, 0.05, 0.01, 0.001)
    expected = brute_force_replay(votes, gold, thresholds, orders=60, seed=3, round_size=round_size)
    got = replay_orders(votes, gold, thresholds, orders=60, seed=3, round_size=round_size)
    assert set(got) == set(thresholds)
    for threshold in thresholds:
        assert got[threshold] == pytest.approx(expected[threshold], abs=1e-12), threshold


def test_replay_orders_converges_to_the_exact_mean_over_all_permutations():
    """Independent of how the orders are drawn: the exact expectation over all 720 orders of 6 samples. With 20,000
    orders the standard error is at most 2 / sqrt(20000) = 0.014 samples (a stop point lies in [2, 6]) and
    0.5 / sqrt(20000) = 0.0035 in accuracy; the tolerances are 4 standard errors."""
    votes, gold, thresholds = ["A", "A", "B", "A", None, "C"], "A", (0.3, 0.2, 0.05)
    exact = {}
    for threshold in thresholds:
        rule = Rule(threshold, 2, 6)
        runs = [(rule.stop_point(list(p)), vote_accuracy(list(p)[:rule.stop_point(list(p))], gold))
                for p in itertools.permutations(votes)]
        exact[threshold] = (sum(s for s, _ in runs) / len(runs), sum(a for _, a in runs) / len(runs))
    got = replay_orders(votes, gold, thresholds, orders=20_000, seed=1, round_size=2)
    assert exact[0.3][0] < exact[0.05][0]  # the thresholds differ here, so the check is not vacuous
    for threshold in thresholds:
        assert got[threshold][0] == pytest.approx(exact[threshold][0], abs=0.057)
        assert got[threshold][1] == pytest.approx(exact[threshold][1], abs=0.015)


# --- settings --------------------------------------------------------------------------------------------


def test_from_metadata_defaults_and_settings():
    assert Rule.from_metadata({}, 32) == Rule(0.05, 4, 32)
    assert Rule.from_metadata({"adaptive_threshold": 0.01, "adaptive_round": 2, "data_dir": "x"}, 32) == Rule(0.01, 2, 32)
    assert Rule.from_metadata({"adaptive_round": 8}, 16) == Rule(0.05, 8, 16)


@pytest.mark.parametrize("metadata,key", [
    ({"adaptive_threshold": "high"}, "adaptive_threshold"),
    ({"adaptive_threshold": None}, "adaptive_threshold"),
    ({"adaptive_threshold": True}, "adaptive_threshold"),
    ({"adaptive_threshold": 0}, "adaptive_threshold"),
    ({"adaptive_threshold": 1}, "adaptive_threshold"),
    ({"adaptive_threshold": 1.5}, "adaptive_threshold"),
    ({"adaptive_threshold": -0.05}, "adaptive_threshold"),
    ({"adaptive_round": 0}, "adaptive_round"),
    ({"adaptive_round": 2.5}, "adaptive_round"),
    ({"adaptive_round": "4"}, "adaptive_round"),
    ({"adaptive_round": True}, "adaptive_round"),
    ({"adaptive_round": 33}, "adaptive_round"),
])
def test_from_metadata_rejects_a_bad_setting_in_one_line_naming_it(metadata, key):
    with pytest.raises(ValueError) as error:
        Rule.from_metadata(metadata, 32)
    message = str(error.value)
    assert key in message and "\n" not in message, message
