"""The free-form matcher against a physician-style test set, ``tests/data/freeform_pairs.jsonl``.

Each row is a whole response, a gold answer text and the verdict a physician grading by hand would give
(``why`` says what the pair tests). The verdicts were written before the matcher was tuned and are never
edited to fit it; over a third of the rows are wrong answers that look right (siblings, reversed
relations, hedges, negations, near-miss names, questions, bare letters). The matcher must accept none of
them (precision 1.0); recall is measured, and the module docstring and the README state both figures.
"""

import json
from pathlib import Path

import pytest

from lm_eval_medreason.evaluation import freeform
from lm_eval_medreason.evaluation.freeform import match_freeform

REPO = Path(__file__).resolve().parents[2]
PAIRS_FILE = REPO / "tests" / "data" / "freeform_pairs.jsonl"
PAIRS = [json.loads(line) for line in PAIRS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
WRONG = [pair for pair in PAIRS if not pair["verdict"]]
RIGHT = [pair for pair in PAIRS if pair["verdict"]]


def test_the_set_is_large_and_hard_enough():
    assert len(PAIRS) >= 100 and 3 * len(WRONG) >= len(PAIRS)
    assert len({pair["id"] for pair in PAIRS}) == len(PAIRS)
    for pair in PAIRS:
        assert set(pair) == {"id", "kind", "gold", "response", "verdict", "why"}, pair["id"]
        assert isinstance(pair["verdict"], bool) and pair["gold"].strip() and pair["why"].strip(), pair["id"]


@pytest.mark.parametrize("pair", WRONG, ids=[pair["id"] for pair in WRONG])
def test_no_wrong_answer_is_accepted(pair):
    assert not match_freeform(pair["response"], pair["gold"]), pair["why"]


def measured() -> str:
    """Precision and recall on the set, in the words the docstring and the README use."""
    accepted_wrong = sum(match_freeform(p["response"], p["gold"]) for p in WRONG)
    accepted_right = sum(match_freeform(p["response"], p["gold"]) for p in RIGHT)
    precision = accepted_right / max(accepted_right + accepted_wrong, 1)
    return (
        f"precision {precision:.2f} ({accepted_wrong} of {len(WRONG)} wrong answers accepted), "
        f"recall {accepted_right / len(RIGHT):.2f} ({accepted_right} of {len(RIGHT)} right answers accepted)"
    )


def test_precision_is_one_and_the_documented_figures_are_the_measured_ones(record_property):
    figures = measured()
    record_property("freeform_pairs", figures)
    print(f"\n{PAIRS_FILE.name}: {figures}")
    assert figures.startswith(f"precision 1.00 (0 of {len(WRONG)} wrong answers accepted)"), figures
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    docstring = " ".join(freeform.__doc__.split())
    for where, text in (("lm_eval_medreason/evaluation/freeform.py docstring", docstring), ("README.md", readme)):
        missed = [p["id"] for p in RIGHT if not match_freeform(p["response"], p["gold"])]
        assert figures in text and "freeform_pairs.jsonl" in text, f"{where} must state: {figures} (missed: {missed})"

