"""Inference-time scaling in the report: accuracy against output tokens per question, and adaptive voting replayed.

``points``: the scaling figure's data (the study's Figure 3, completed), per benchmark, because the
``_budget`` tasks have no group and are often run on one benchmark alone. For each (model, strategy):

- ``_budget``: at each budget B, (mean ``tokens@B``, mean ``acc@B``), then the full budget (mean
  ``output_tokens``, mean ``acc``); ``tokens@B`` counts what the model wrote within B, not the forced answer;
- ``_maj``: at each k, (k x mean ``output_tokens`` per response, mean ``maj@k``), as in Figure 3;
- ``_adaptive``: (mean ``output_tokens``, the tokens of every sample the rule drew for a question, mean ``acc``).

``replay``: for every ``_maj`` row, what adaptive voting would have cost there: Adaptive-Consistency's rule
(``evaluation.adaptive``, rounds of 4 as the ``_adaptive`` tasks draw them) replayed over ``REPLAY_ORDERS``
random orders of each question's logged votes, giving the expected samples per question and the accuracy
per threshold (``adaptive.REPORT_THRESHOLDS``). The expectation over random orders depends only on how many
votes each letter got, so questions with the same counts (gold's, the other letters', no answer's) share one
replay: a report of 10 runs x 2,227 questions replays about a thousand vote patterns, not 22,270 questions.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from lm_eval_medreason.evaluation.adaptive import REPORT_THRESHOLDS, replay_orders
from lm_eval_medreason.reporting.logs import BENCHMARKS

REPLAY_ORDERS = 1000  # random orders replayed per vote pattern (seeded by the report's --seed)


def _mean(values: np.ndarray) -> float:
    """Mean over the questions with a value (NaN: a grade the log left out)."""
    return float(np.nanmean(values))


def points(rows, scaling_rows) -> list[dict]:
    """The scaling figure's points on every benchmark with an ``_adaptive`` or ``_budget`` run: those runs and
    the ``_maj`` rows of ``rows`` (Table 1's). Each point: model, strategy (the base strategy), mode ("budget",
    "maj", "adaptive"), benchmark, at (B, "full", k or None), tokens (per question), acc (a fraction), task."""
    benchmarks = [b for b in BENCHMARKS if any(b in row.tasks for row in scaling_rows)]
    found = []
    for row in [r for r in rows if r.maj_k] + list(scaling_rows):
        for benchmark in benchmarks:
            samples = row.tasks.get(benchmark)
            if samples is None:
                continue
            m = samples.metrics

            def point(at, tokens: float, acc: float, **extra) -> dict:
                return {"model": row.model, "strategy": row.base, "mode": samples.mode, "benchmark": benchmark,
                        "at": at, "tokens": tokens, "acc": acc, "task": samples.task, **extra}

            if samples.mode == "maj":
                per_response = _mean(m["output_tokens"])
                found += [point(k, k * per_response, _mean(m[f"maj@{k}"])) for k in samples.maj_ks]
            elif samples.mode == "budget":
                found += [point(b, _mean(m[f"tokens@{b}"]), _mean(m[f"acc@{b}"])) for b in samples.budgets]
                found.append(point("full", _mean(m["output_tokens"]), _mean(m["acc"])))
            else:
                found.append(point(None, _mean(m["output_tokens"]), _mean(m["acc"]), samples=_mean(m["samples"])))
    return found


def point_label(p: dict) -> str:
    """How the figure names one point: "budget 512", "full budget", "maj@4", "adaptive (9.3 samples)"."""
    if p["mode"] == "budget":
        return "full budget" if p["at"] == "full" else f"budget {p['at']}"
    if p["mode"] == "maj":
        return f"maj@{p['at']}"
    return f"adaptive ({p['samples']:.1f} samples)"


def _pattern(votes, gold) -> tuple[int, tuple[int, ...], int]:
    """A question's votes as counts: (gold's, the other letters' in descending order, no answer's)."""
    counts = Counter(votes)
    unanswered = counts.pop(None, 0)
    right = counts.pop(gold, 0) if gold is not None else 0
    return right, tuple(sorted(counts.values(), reverse=True)), unanswered


def _replay_pattern(pattern: tuple[int, tuple[int, ...], int], seed: int, orders: int) -> dict:
    """``replay_orders`` on one vote pattern, written out as votes: gold "G", the others "O0", "O1", ..., None."""
    right, others, unanswered = pattern
    votes = ["G"] * right + [f"O{i}" for i, c in enumerate(others) for _ in range(c)] + [None] * unanswered
    return replay_orders(votes, "G", REPORT_THRESHOLDS, orders, seed)


def replay(rows, seed: int = 0, orders: int = REPLAY_ORDERS) -> list[dict]:
    """Per ``_maj`` task (benchmark, and "pooled" over a row's benchmarks when it has several, size-weighted):
    n, the votes per question,
    maj@K, tokens per response, and per threshold t ``samples_t`` (expected samples per question) and ``acc_t``
    (accuracy, %)."""
    cache: dict = {}
    records = []
    for row in (r for r in rows if r.maj_k):
        parts = []
        for benchmark, samples in row.tasks.items():
            results = []
            for votes, gold in zip(samples.votes, samples.gold):
                pattern = _pattern(votes, gold)
                if pattern not in cache:
                    cache[pattern] = _replay_pattern(pattern, seed, orders)
                results.append(cache[pattern])
            parts.append((benchmark, samples, results))
        groups = [(b, [(s, r)]) for b, s, r in parts]
        if len(parts) > 1:
            groups.append(("pooled", [(s, r) for _, s, r in parts]))
        for name, members in groups:
            results = [r for _, rs in members for r in rs]
            maj = np.concatenate([s.metrics[row.metric] for s, _ in members])
            record = {"model": row.model, "strategy": row.strategy, "benchmark": name,
                      "benchmarks": "+".join(s.benchmark for s, _ in members), "n": len(results),
                      "votes": max(len(v) for s, _ in members for v in s.votes),
                      "maj_acc": round(100 * _mean(maj), 4),
                      "tokens": round(_mean(np.concatenate([s.metrics["output_tokens"] for s, _ in members])), 2)}
            for t in REPORT_THRESHOLDS:
                record[f"samples_{t}"] = round(float(np.mean([r[t][0] for r in results])), 4)
                record[f"acc_{t}"] = round(100 * float(np.mean([r[t][1] for r in results])), 4)
            records.append(record)
    return records


REPLAY_COLUMNS = (["model", "strategy", "benchmark", "benchmarks", "n", "votes", "maj_acc", "tokens"]
                  + [f"{m}_{t}" for t in REPORT_THRESHOLDS for m in ("samples", "acc")])
