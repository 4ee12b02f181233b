"""Which teacher traces become training data, and which input cases are evaluation cases in disguise.

``judge_trace`` applies the filters, in this order, and returns the kept trace or the reason
it is dropped (each reason a fixed word, counted in the run's statistics):

- ``content_filter`` / ``length``: the API's finish reason (a cut-off or censored reply);
- ``empty``: no text;
- ``no_answer``: ``extract_choice`` finds no committed letter (malformed output);
- ``wrong_answer``: the committed letter is not the gold one;
- ``too_short``: fewer than ``min_tokens`` tiktoken tokens (the study kept only cases with
  a substantial thought process; short traces teach the student to stop reasoning early);
- ``duplicate`` (checked by the pipeline): the same normalised trace text was already kept.

The final answer line is normalised to ``The answer is (X).``: a last line that only commits
("**Final answer: (C) Heparin**", "Therefore, the answer is C.") is replaced by it; a last line
that also reasons ("So heparin it is; the answer is C, clearly.") is kept whole and the
normalised line appended, so that no reasoning is ever deleted.

``ContaminationGuard`` drops input cases whose question equals an evaluation question after
normalisation (case, accents, punctuation, whitespace), or whose word-trigram set has a Jaccard
similarity >= ``threshold`` (default 0.5) with one. Candidates come from an inverted index over
the rarer trigrams (those in at most ``max_postings`` evaluation questions), then each
candidate's exact Jaccard is computed with set operations, so a check costs a few set
operations rather than one per evaluation question.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from lm_eval_medreason.data import registry
from lm_eval_medreason.evaluation.answers import extract_choice, strip_accents
from lm_eval_medreason.tokens import count_tokens

FINAL_LINE = "The answer is ({letter})."
DEFAULT_MIN_TOKENS = {name: s.distill_min_tokens for name, s in registry.STRATEGIES.items() if s.distillable}
STUDY_MEAN_TOKENS = {"longstep": 729, "longmonolog": 1223}
# Expected completion tokens for rate limits and --dry-run: the study's means; for CoT (which it does not
# give) about the vanilla CoT output length of the study's 7-8B models on MedQA.
EXPECTED_TRACE_TOKENS = {**STUDY_MEAN_TOKENS, "cot": 400}

_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Judgement:
    """A kept trace (``reason`` None) or the reason it is dropped; ``answer`` is the extracted letter."""

    reason: str | None
    text: str = ""
    answer: str | None = None
    tokens: int = 0


def normalise_final_line(text: str, letter: str, options: dict | None = None) -> str:
    """``text`` ending with exactly ``The answer is (letter).`` (see the module docstring)."""
    lines = text.rstrip().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    final = FINAL_LINE.format(letter=letter)
    if lines and _only_commits(lines[-1], letter, (options or {}).get(letter)):
        lines[-1] = final
    else:
        lines.append("")
        lines.append(final)
    return "\n".join(lines).strip() + "\n"


# The words a bare commitment line may hold besides the letter and its option's text.
_COMMIT_WORDS = frozenset(
    "so thus therefore hence overall conclusion in summary the my our final correct best right most likely answer "
    "is option choice letter boxed text textbf mathrm".split()
)


def _only_commits(line: str, letter: str, option_text: str | None) -> bool:
    """Whether ``line`` commits to ``letter`` and says nothing else (no reasoning to keep)."""
    words = _WORD.findall(line.lower())
    if letter.lower() not in words or extract_choice(line, {letter: option_text or letter}) != letter:
        return False
    named = _WORD.findall((option_text or "").lower())
    for start in range(len(words) - len(named) + 1) if named else ():
        if words[start : start + len(named)] == named:  # the option's text after its letter
            del words[start : start + len(named)]
            break
    return all(word in _COMMIT_WORDS or word == letter.lower() for word in words)


def judge_trace(text: str | None, finish_reason: str | None, case: dict, min_tokens: int) -> Judgement:
    """Apply the filters of the module docstring to one teacher reply."""
    if finish_reason in ("content_filter", "length"):
        return Judgement(finish_reason)
    if not text or not text.strip():
        return Judgement("empty")
    answer = extract_choice(text, case["options"])
    if answer is None:
        return Judgement("no_answer")
    if answer != case["answer_idx"]:
        return Judgement("wrong_answer", answer=answer)
    normalised = normalise_final_line(text, answer, case["options"])
    tokens = count_tokens(normalised)
    if tokens < min_tokens:
        return Judgement("too_short", answer=answer, tokens=tokens)
    return Judgement(None, normalised, answer, tokens)


def trace_hash(text: str) -> str:
    """Key for the duplicate filter: the trace with case, punctuation and whitespace ignored."""
    return hashlib.sha256(" ".join(_WORD.findall(text.lower())).encode("utf-8")).hexdigest()[:32]


# ---------------------------------------------------------------- contamination guard


def normalise_words(text: str) -> list[str]:
    """Lower-cased words without accents or punctuation."""
    text = text.lower()
    if not text.isascii():
        text = strip_accents(text)
    return _WORD.findall(text)


def shingles(words: list[str], k: int = 3) -> set[int]:
    """Hashes of the word k-grams (the whole text as one shingle when shorter than k words)."""
    if len(words) < k:
        return {hash(tuple(words))} if words else set()
    return {hash(tuple(words[i : i + k])) for i in range(len(words) - k + 1)}


class ContaminationGuard:
    """Finds, for an input question, an evaluation case it copies exactly or nearly (see the module docstring)."""

    def __init__(self, eval_cases: Iterable[tuple[str, str]], threshold: float = 0.5, max_postings: int = 50, k: int = 3):
        self.threshold, self.k, self.max_postings = threshold, k, max_postings
        self.exact: dict[str, str] = {}
        self.ids: list[str] = []
        self.sets: list[set[int]] = []
        postings: dict[int, list[int]] = defaultdict(list)
        for label, question in eval_cases:
            words = normalise_words(question)
            self.exact.setdefault(" ".join(words), label)
            doc = len(self.ids)
            self.ids.append(label)
            self.sets.append(shingles(words, k))
            for s in self.sets[-1]:
                postings[s].append(doc)
        # Frequent shingles ("which of the following") find no near copy a rarer one would not; leave them out.
        self.index = {s: docs for s, docs in postings.items() if len(docs) <= max_postings}

    def __len__(self) -> int:
        return len(self.ids)

    def match(self, question: str) -> tuple[str, float] | None:
        """(evaluation case label, similarity) of the closest copy at or above the threshold, else None."""
        words = normalise_words(question)
        label = self.exact.get(" ".join(words))
        if label is not None:
            return label, 1.0
        mine = shingles(words, self.k)
        candidates = {doc for s in mine for doc in self.index.get(s, ())}
        best: tuple[str, float] | None = None
        for doc in candidates:
            theirs = self.sets[doc]
            shared = len(mine & theirs)
            similarity = shared / (len(mine) + len(theirs) - shared)
            if similarity >= self.threshold and (best is None or similarity > best[1]):
                best = (self.ids[doc], similarity)
        return best
