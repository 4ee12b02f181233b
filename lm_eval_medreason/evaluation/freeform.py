"""Free-form answers (the study's section 3.5): the options are withheld, the model names one answer.

Hooks for the ``{benchmark}_freeform`` task YAML: ``<benchmark>_dataset`` (the cases plus
the judge settings), ``prompt_freeform``, the ``graded`` filter ``GradeFreeform`` and
``process_results``. The deterministic matcher ``match_freeform`` grades when no LLM judge
is configured; with one (``lm_eval_medreason.evaluation.judge``), the judge grades and the matcher's
verdict is kept beside it, so that their agreement is measured.

Final-answer extraction (``extract_final_answer``), in order:

1. Only the text after the last ``</think>`` counts; a ``<think>`` left open (reasoning cut
   off) gives None.
2. The last "Final answer: X" / "Final diagnosis: X" ("**Final answer:** X", "Final answer is X",
   a "Final answer" heading with X on the next line) that names something.
3. Else the last "The answer is X", "Answer: X", "The answer to this case is: X", "The (most
   likely) diagnosis is X", ``\\boxed{X}``.
4. Else, with no such label at all, a reply that is one short line (12 words at most) is the
   answer itself, unless it is a refusal or a question ("I cannot determine...", "...?").
X ends at the end of its line or sentence (". " before a capital, " because ", " since ", " - ");
markdown, ``\\boxed{}``/``\\text{}``, quotes, a trailing period, a leading "The diagnosis is" and a
made-up option letter before the text ("B. X", "(C) X") are stripped. A line that only announces
the answer ("The answer to this clinical case is:", "Final answer:" with nothing after it) is not
the answer: the answer is the next line, else an earlier label's, else none. Nothing left, a
question ("Final answer: X?") or a bare option letter ("C", "(B)": the options are withheld):
None (counted as ``no_answer``, and wrong under either grader); ``grade_with_matcher`` keeps a
bare letter only where the gold itself is that letter (a region of a figure).

Matching (``answers_match(answer, gold)``): the answer matches the gold text when one of
their forms is equal after normalisation:
- case, accents (NFKD), Greek letters (β = beta), punctuation, possessive 's (with or without
  the apostrophe), the words "a", "an", "the", "of", plural -s/-ies, Roman numerals I-X (type I =
  type 1), thousands separators ("1,000") and British spellings (haem-, -aemia, oesophag-,
  tumour, ...) are ignored; a decimal is one number ("2.5" is neither "25" nor "5.2");
- hyphens and dashes (-, ‐, –, —) both as spaces and as nothing ("beta-thalassemia", "beta
  thalassemia", "betathalassemia"); spaces are ignored when the words are in the same order, but
  two numbers never run together ("1 and 2" is not "12");
- word order within a clause is ignored ("lupus nephritis" = "nephritis lupus"), and so is the
  order of clauses split at commas, semicolons, "and", "plus", "&" ("ceftriaxone and
  vancomycin" = "vancomycin and ceftriaxone") -- but each modifier stays bound to the word it
  modifies ("increased PTH, decreased calcium" is not "decreased PTH, increased calcium";
  "left ventricle" is not "right ventricle"), see ``_MODIFIERS``; a text holding
  < > = + / or arrows ("25/250", "LOD score > 3", "A > B > C") is compared in order only;
- relations keep their order (``_RELATIONS``): the parts around "secondary to", "due to", "caused
  by", "to", "from", "by", "than", "inhibits", ... are each order-free but stay in place, so
  "hypothyroidism secondary to Hashimoto thyroiditis" = "... due to Hashimoto thyroiditis" =
  "Hashimoto thyroiditis causing hypothyroidism", but not "Hashimoto thyroiditis secondary to
  hypothyroidism"; nor is "conversion of X to Y" "conversion of Y to X", nor "X of Y metastatic
  to Z" "Z of Y metastatic to X";
- an index form "nephritis, lupus" also reads, in that order, as "lupus nephritis";
- a bracketed abbreviation that restates the words just before it may be left out ("Pulmonary
  embolism (PE)" = "Pulmonary embolism"; any other bracket stays part of the answer: "diabetes
  mellitus (type 2)" is not "diabetes mellitus (type 1)"), and a trailing one that stands for all
  the words before it matches alone: "SLE" = "Systemic lupus erythematosus (SLE)", but "HgbF" is
  not "Increases levels of fetal hemoglobin (HgbF)". An abbreviation stands for words when each
  word gives its first letter and maybe more of its letters in order ("DKA": Diabetic
  KetoAcidosis), "of", "and", "type", ... may give none (``_fits``);
- an abbreviation the response defines ("... diabetic ketoacidosis (DKA) ..." then "Final answer:
  DKA") is read as defined, and then only so ("mitral stenosis (MS)" makes "MS" mitral
  stenosis); the very common abbreviations of ``ABBREVIATIONS`` (MI, PE, DVT, COPD, CHF, SLE,
  TB, UTI, DKA, ...) are expanded on both sides; and an answer of three or more capitals that
  stands for all the words of a gold of two or more ("TTP", "HUS", "SCLC"; "EGPA" for a synonym)
  matches, unless the table reads it otherwise ("AML" is not acute monocytic leukemia);
- the gold named with a more specific extent that conflicts with nothing in it ("localized
  bullous pemphigoid" for "bullous pemphigoid", not for "generalized bullous pemphigoid"),
  see ``_QUALIFIERS``; severity, type, stage or a complication are never dropped;
- two names of one disease in ``synonyms.tsv`` match: former names and eponyms, each row citing
  its Disease Ontology ID or MeSH descriptor ("Churg-Strauss syndrome" = "eosinophilic
  granulomatosis with polyangiitis", "Reiter syndrome" = "reactive arthritis"), and "X (Y)" with
  two such names reads as either.
Everything else must be equal: "type 1" vs "type 2 diabetes", "acute myeloid" vs "acute
lymphoblastic leukemia", "Hepatitis B" vs "Hepatitis C", "diabetes" vs "type 1 diabetes mellitus",
small cell vs non-small cell, artery vs vein, primary vs secondary never match; synonyms outside
the cited list are the judge's job. A hedge or negation never matches: an answer holding "or",
"either", "vs", "differential", "possible", "suspected", "not", "no", "unlikely", "excluded", ...
(``_HEDGES``) that the gold does not hold, nor one whose line goes on to take it back ("X - ruled
out", "X. However, Y remains possible", "X. Or perhaps Y"). ``match_freeform`` also tries the
answer's whole line, so that a gold text of several sentences can match. On the real MedQA and
Medbullets files no distractor option matches its question's gold answer (a test checks this).
Measured on the physician-style test set ``tests/data/freeform_pairs.jsonl`` (246 pairs, verdicts
written before the matcher was tuned): precision 1.00 (0 of 133 wrong answers accepted), recall
0.93 (105 of 113 right answers accepted).
"""

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

from lm_eval.api.filter import Filter

from lm_eval_medreason.data.registry import BENCHMARKS
from lm_eval_medreason.evaluation.answers import reasoning_end, strip_accents
from lm_eval_medreason.evaluation.hooks import dataset_hook
from lm_eval_medreason.prompts import render
from lm_eval_medreason.tokens import count_tokens

# --------------------------------------------------------------------------- extraction

_FINAL = re.compile(
    r"final\s+(?:answer|diagnosis)\b[ \t*_`]*(?:is\b|[:：=\-–—])|^[ \t#>*_`]*final\s+(?:answer|diagnosis)[ \t*_`]*$",
    re.I | re.M,
)
_COMMIT = re.compile(
    r"\b(?:answer\s*(?:is\b|would\s+be\b|[:：])"
    r"|answer\s+(?:to|for)\s+(?:this|the)\b[^\n:.?]{0,60}?\b(?:is|would\s+be)\b"  # "The answer to this case is:"
    r"|(?<!differential )diagnosis\s*(?:is\b|[:：]))|\\boxed\s*\{",
    re.I,
)
_SENTENCE_END = re.compile(r"\.\s+(?=[A-Z(])|\s+(?:because|since)\b|\s[—–-]\s")
_BOILERPLATE = re.compile(
    r"^(?:(?:the|my)\s+)?(?:(?:most\s+)?(?:likely|probable)\s+|final\s+|correct\s+|best\s+)*"
    r"(?:diagnosis|answer|cause|etiology|treatment|management|next\s+step)\s*(?:is|would\s+be|:)\s*"
    r"|^(?:most\s+likely|probably|likely)\s+",
    re.I,
)
_STRIP = " \t:：*_`#>\"'“”$.,!"
# With the options withheld, a bare option letter names nothing ("Final answer: C", "(B)", "Option D")...
_OPTION_LETTER = re.compile(r"(?:option|choice)?\s*[(\[]?[A-Ea-e][)\]]?[.:]?", re.I)
# ...and a made-up letter before the answer's text is dropped ("B. Kawasaki disease", "(C) Kawasaki disease").
_LETTER_PREFIX = re.compile(r"^[(\[]?[A-E][)\]]\s+|^[A-E][.:]\s+(?=[A-Z])")
# What follows the answer on its line that takes it back ("X - ruled out", "X. Unlikely, though", "X. Or Y").
_RETRACTION = re.compile(
    r"\W*(?:(?:this|that|it|which)\s+(?:is|was|seems|appears)\s+(?:not\b|unlikely|less\s+likely)|unlikely|less\s+likely"
    r"|ruled\s+out|excluded|or\b|vs\b|versus|but\b|however|although|though|possibly|perhaps|maybe|alternatively"
    r"|cannot|can['’]?t|unless|differential)",
    re.I,
)
_SHORT_REPLY_WORDS = 12
# A short reply that is a refusal or a question is no answer (only for unlabelled replies: gold
# texts such as "Hypothesis testing cannot be performed" hold these words too).
_REFUSAL = re.compile(
    r"\b(?:cannot|can['’]?t|can\s+not|unable|not\s+sure|unsure|(?:do\s+not|don['’]?t)\s+know|"
    r"insufficient|not\s+enough|more\s+information)\b|\?\s*$",
    re.I,
)


def _clean(span: str, first_sentence: bool = True) -> str | None:
    """The answer in ``span``: its first line (and sentence), without markdown, LaTeX or boilerplate."""
    for _ in range(2):  # \boxed{\text{X}}
        span = re.sub(r"\\(?:boxed|text|textbf|mathrm)\s*\{([^{}]*)\}?", r"\1", span)
    span = span.replace("**", "").replace("__", "").strip(_STRIP + "{}").split("\n", 1)[0]
    span = _LETTER_PREFIX.sub("", span, count=1)
    if first_sentence:
        span = _SENTENCE_END.split(span, maxsplit=1)[0]
    span = _BOILERPLATE.sub("", span.strip(_STRIP)).strip(_STRIP + "{}")
    return span if any(c.isalnum() for c in span) else None


def _span_after(text: str, end: int) -> str:
    """The rest of the line after a phrase, or the next non-empty line when the rest is blank."""
    line, _, rest = text[end:].partition("\n")
    if line.strip(_STRIP):
        return line
    return next((ln for ln in rest.splitlines() if ln.strip(_STRIP)), "")


def _answer_span(response: str) -> str | None:
    """The raw text that holds the final answer (steps 1-4 of the module docstring), or None."""
    response = response or ""
    end = reasoning_end(response)
    text = None if end is None else response[end:]
    if not text or not text.strip():
        return None
    labelled = False
    for pattern in (_FINAL, _COMMIT):
        for match in reversed(list(pattern.finditer(text))):  # the last label naming something wins
            labelled = True
            span = _span_after(text, match.end())
            if _clean(span):  # a question names nothing ("Final answer: Could it be X?")
                return None if (_clean(span, first_sentence=False) or "").endswith("?") else span
    if labelled:
        return None
    lines = [ln for ln in text.splitlines() if ln.strip(_STRIP)]
    if len(lines) == 1 and len(lines[0].split()) <= _SHORT_REPLY_WORDS and not _REFUSAL.search(lines[0]):
        return lines[0]
    return None


def extract_final_answer(response: str) -> str | None:
    """The one answer ``response`` finally named, or None (policy in the module docstring)."""
    span = _answer_span(response)
    answer = _clean(span) if span else None
    return None if answer and _OPTION_LETTER.fullmatch(answer) else answer


def _retracted(line: str) -> bool:
    """Does the rest of the answer's line take the answer back ("X - ruled out", "X. Or perhaps Y")?"""
    cut = _SENTENCE_END.search(line)
    return bool(cut and not re.search(r"because|since", cut.group()) and _RETRACTION.match(line[cut.end() :]))


# --------------------------------------------------------------------------- matching

# Very common abbreviations, expanded as whole words on both sides. Kept small and
# unambiguous in an answer to a clinical question; anything rarer is left to the judge.
ABBREVIATIONS = {
    "mi": "myocardial infarction",
    "stemi": "st elevation myocardial infarction",
    "nstemi": "non st elevation myocardial infarction",
    "pe": "pulmonary embolism",
    "dvt": "deep vein thrombosis",
    "copd": "chronic obstructive pulmonary disease",
    "chf": "congestive heart failure",
    "sle": "systemic lupus erythematosus",
    "tb": "tuberculosis",
    "uti": "urinary tract infection",
    "dka": "diabetic ketoacidosis",
    "hhs": "hyperosmolar hyperglycemic state",
    "ra": "rheumatoid arthritis",
    "ms": "multiple sclerosis",
    "als": "amyotrophic lateral sclerosis",
    "ards": "acute respiratory distress syndrome",
    "aki": "acute kidney injury",
    "ckd": "chronic kidney disease",
    "gerd": "gastroesophageal reflux disease",
    "ibs": "irritable bowel syndrome",
    "ttp": "thrombotic thrombocytopenic purpura",
    "itp": "immune thrombocytopenia",
    "dic": "disseminated intravascular coagulation",
    "aml": "acute myeloid leukemia",
    "cml": "chronic myeloid leukemia",
    "cll": "chronic lymphocytic leukemia",
    "hiv": "human immunodeficiency virus",
    "pcos": "polycystic ovary syndrome",
    "bph": "benign prostatic hyperplasia",
    "pid": "pelvic inflammatory disease",
    "sah": "subarachnoid hemorrhage",
    "tia": "transient ischemic attack",
    "afib": "atrial fibrillation",
}
# A modifier stays bound to the word after it when word order is otherwise ignored.
_MODIFIERS = frozenset(
    "increased decreased elevated reduced high low positive negative normal abnormal left right "
    "upper lower anterior posterior medial lateral proximal distal superior inferior acute chronic "
    "primary secondary type stage grade class with without no not non anti pre post hyper hypo".split()
)
_DROPPED = frozenset({"a", "an", "the", "of"})
_ROMAN = {r: str(i) for i, r in enumerate("i ii iii iv v vi vii viii ix x".split(), start=1)}
_GREEK = str.maketrans({"α": "alpha ", "β": "beta ", "γ": "gamma ", "δ": "delta ", "κ": "kappa ", "λ": "lambda "})
# Words that hedge or negate an answer when the gold does not hold them.
_HEDGES = frozenset(
    "or either vs versus differential possible possibly suspected suspect suspicion questionable query maybe "
    "perhaps uncertain unclear unlikely excluded ruled not no".split()
)
_CLAUSE_SPLIT = re.compile(r"[,;&]|\b(?:and|plus)\b")
_WORD = re.compile(r"\d+(?:\.\d+)+|[^\W_]+")  # a decimal is one word: "2.5" is not "25" nor "5.2"
_TRAILING_BRACKET = re.compile(r"\s*[(\[]([^()\[\]]*)[)\]]\W*$")
# Texts holding these are order-sensitive ("25/250", "LOD score > 3", "A > B > C"): matched in order only.
_ORDERED = re.compile(r"[<>≤≥=+/↑↓→]")
_SYMBOLS = str.maketrans({"<": " lt ", ">": " gt ", "≤": " le ", "≥": " ge ", "=": " eq ", "+": " plus ",
                          "↑": " up ", "↓": " down ", "→": " to "})
# Relations: the parts on either side of these keep their order ("X secondary to Y" is not "Y secondary to
# X"); the causal ones are read as one relation, "A causing B" as "B due to A".
_CAUSED_BY = ("secondary to", "due to", "caused by", "because of", "as a result of", "resulting from", "owing to",
              "induced by", "attributable to")
_CAUSES = ("causing", "causes", "leading to", "leads to", "resulting in", "results in", "inducing", "induces")
_ORDER_WORDS = (
    "to into from by than over via through toward towards against after before following inhibits "
    "inhibiting blocks blocking activates activating stimulates stimulating binds converts converting cleaves "
    "produces secretes compresses compressing obstructs obstructing invades invading replaces precedes exceeds "
    "mimics suppresses antagonizes"
).split()
_RELATIONS = {**{m: "<due to>" for m in _CAUSED_BY}, **{m: "<causes>" for m in _CAUSES}, **{m: m for m in _ORDER_WORDS}}
_RELATION = re.compile(
    r"\b(" + "|".join(re.escape(m).replace(r"\ ", r"\s+") for m in sorted(_RELATIONS, key=len, reverse=True)) + r")\b"
)
# A qualifier that makes the gold more specific without naming another disease ("localized bullous
# pemphigoid" for "bullous pemphigoid"), unless the gold holds one of its siblings.
_QUALIFIERS = frozenset("localized localised generalized generalised".split())
_QUALIFIER_SIBLINGS = _QUALIFIERS | frozenset(
    "local regional disseminated metastatic systemic focal diffuse limited widespread".split()
)
# Words an abbreviation may skip ("TOF" and "TF" both stand for tetralogy of Fallot).
_SKIPPABLE = frozenset("of the and or with in to for a an on by type".split())
# British spellings, folded on both sides ("haemorrhage", "anaemia", "oesophagus", "tumour").
_BRITISH = re.compile("haem|aemia|ischaem|oedem|oesophag|oestr|paed|foet|coeli|rrhoea|caec|anaes|tumour")
_AMERICAN = {"haem": "hem", "aemia": "emia", "ischaem": "ischem", "oedem": "edem", "oesophag": "esophag",
             "oestr": "estr", "paed": "ped", "foet": "fet", "coeli": "celi", "rrhoea": "rrhea", "caec": "cec",
             "anaes": "anes", "tumour": "tumor"}
_SYNONYMS_FILE = Path(__file__).with_name("synonyms.tsv")


def _fold(text: str) -> str:
    """Case, accents, Greek letters and possessive 's folded away; symbols as words."""
    text = strip_accents(text.casefold().translate(_GREEK)).casefold()
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # "1,000" = "1000", but "1, 2" stays a list
    text = _BRITISH.sub(lambda m: _AMERICAN[m.group()], text)
    return re.sub(r"(?<=\w)['’`]s\b", "", text).translate(_SYMBOLS)


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _words(text: str) -> list[str]:
    """Normalised words of a folded text: dropped words out, numerals, abbreviations, singulars."""
    words = _WORD.findall(text)
    kept = [w for w in words if w not in _DROPPED] or words  # "A" alone is a letter, not an article
    out = []
    for word in kept:
        word = _ROMAN.get(word, word)
        out.extend(_singular(w) for w in ABBREVIATIONS.get(word, word).split())
    return out


def _joined(words: list[str]) -> str:
    """Words run together ("beta thalassemia" = "betathalassemia"), but never two numbers ("1 2" is not "12")."""
    out = ""
    for word in words:
        out += " " + word if out[-1:].isdigit() and word[:1].isdigit() else word
    return out


def _order_free_key(text: str) -> tuple:
    """Clauses as word multisets, each modifier paired with the word after it (see ``_MODIFIERS``)."""
    clauses = []
    for clause in _CLAUSE_SPLIT.split(text):
        words = _words(clause)
        if words:
            pairs = sorted((w, n) for w, n in zip(words, words[1:]) if w in _MODIFIERS)
            clauses.append((tuple(sorted(words)), tuple(pairs)))
    return tuple(sorted(clauses))


def _relation_key(folded: str) -> tuple | None:
    """The parts around relation words, each order-free, in order; None without a relation word."""
    parts = _RELATION.split(folded)
    if len(parts) == 1:
        return None
    segments = [_order_free_key(part) for part in parts[0::2]]
    relations = [_RELATIONS[re.sub(r"\s+", " ", m)] for m in parts[1::2]]
    if relations == ["<causes>"]:  # "A causing B" is "B due to A"
        segments, relations = segments[::-1], ["<due to>"]
    return tuple(segments), tuple(relations)


def _fits(abbreviation: str, words: list[str]) -> bool:
    """Can ``abbreviation`` stand for all of ``words``? Each word gives its first letter, and maybe more of
    its letters in order ("DKA": Diabetic KetoAcidosis, "HOCM"); a word of ``_SKIPPABLE`` may give none."""
    letters = abbreviation.lower().replace("-", "")

    @lru_cache(maxsize=None)
    def rest_fits(i: int, j: int) -> bool:
        if i == len(words):
            return j == len(letters)
        word = words[i]
        if word in _SKIPPABLE and rest_fits(i + 1, j):
            return True
        if j == len(letters) or letters[j] != word[0]:
            return False
        j, position = j + 1, 1
        while True:
            if rest_fits(i + 1, j):
                return True
            position = word.find(letters[j], position) + 1 if j < len(letters) else 0
            if not position:
                return False
            j += 1

    return bool(words) and rest_fits(0, 0)


_BRACKETED = re.compile(r"\s*[(\[]\s*([A-Za-z][A-Za-z0-9\-]{1,11})\s*[)\]]")


def _restates(abbreviation: str, before: str) -> bool:
    """Does a bracketed ``abbreviation`` stand for the words just before it ("pulmonary embolism (PE)")?"""
    words = _WORD.findall(_fold(before))
    return sum(c.isupper() for c in abbreviation) >= 2 and any(
        _fits(abbreviation, words[-n:]) for n in range(1, min(len(words), 12) + 1)
    )


def _without_restated(text: str) -> str:
    """``text`` without the bracketed abbreviations that restate the words before them: "Pulmonary embolism
    (PE)" -> "Pulmonary embolism"; "Deposition of calcium pyrophosphate (CPP) crystals" -> "... crystals"."""
    return _BRACKETED.sub(lambda m: "" if _restates(m.group(1), text[: m.start()]) else m.group(), text)


def _abbreviation(text: str) -> str | None:
    """"SLE" of "Systemic lupus erythematosus (SLE)": a trailing bracketed abbreviation that stands for
    all the words before it (not "PID" of "Active or recurrent pelvic inflammatory disease (PID)")."""
    m = _TRAILING_BRACKET.search(text)
    if not m or not re.fullmatch(r"[A-Za-z][A-Za-z0-9\-]{1,11}", m.group(1).strip()):
        return None
    abbreviation = m.group(1).strip()
    big = sum(c.isupper() for c in abbreviation) >= 2
    return abbreviation if big and _fits(abbreviation, _WORD.findall(_fold(text[: m.start()]))) else None


@lru_cache(maxsize=8192)
def _keys(text: str) -> frozenset:
    """Every form of an answer text (see the module docstring) as matching keys."""
    forms = {text}
    forms.add(_without_restated(text))  # "Pulmonary embolism (PE)" -> "Pulmonary embolism"; not "(type 2)"
    if _abbreviation(text):
        forms.add(_abbreviation(text))
    inverted = set()
    for form in forms:
        head, comma, tail = form.partition(",")
        short = len(head.split()) <= 4 and len(tail.split()) <= 4
        if comma and "," not in tail and short and not _RELATION.search(_fold(form)):
            inverted.add(f"{tail} {head}")  # "Nephritis, lupus": an index form, read in order
    keys = set()
    for form, order_free in [*((f, True) for f in forms), *((f, False) for f in inverted)]:
        folded = _fold(form)
        for variant in {folded, re.sub(r"(?<=\w)[\-‐‑–—](?=\w)", "", folded)}:  # hyphen as space / as nothing
            joined = _joined(_words(variant))
            if joined:
                keys.add(("joined", joined))
                if order_free and not _ORDERED.search(form):
                    relation = _relation_key(variant)
                    keys.add(("relation", relation) if relation else ("order-free", _order_free_key(variant)))
    return frozenset(keys)


@lru_cache(maxsize=1)
def _synonyms() -> tuple[dict, dict]:
    """(matching key -> concept, concept -> names) from ``synonyms.tsv``, whose every row names its source."""
    index, names = {}, {}
    for number, line in enumerate(_SYNONYMS_FILE.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith(("#", "concept\t")):
            continue
        fields = line.split("\t")
        cited = len(fields) == 3 and re.search(r"DOID:\d+|MeSH D\d+", fields[2])
        if not cited or not re.fullmatch(r"DOID:\d+", fields[0]):
            raise ValueError(
                f"{_SYNONYMS_FILE}:{number}: expected 'DOID:<id> <tab> name <tab> source naming a DOID or a MeSH "
                f"descriptor', got {line!r}"
            )
        concept, name = fields[0], fields[1]
        for key in _keys(name):
            if index.setdefault(key, concept) != concept:
                raise ValueError(f"{_SYNONYMS_FILE}:{number}: {name!r} also reads as a name of {index[key]}")
        names.setdefault(concept, []).append(name)
    return index, names


@lru_cache(maxsize=8192)
def _concepts(text: str) -> frozenset:
    """The diseases of ``synonyms.tsv`` that the whole of ``text`` names."""
    index = _synonyms()[0]
    return frozenset(index[key] for key in _keys(text) if key in index)


_DEFINITION = re.compile(r"\(\s*([A-Za-z][A-Za-z0-9\-]{1,9})\s*\)")


def abbreviations_defined(response: str) -> dict[str, str | None]:
    """The abbreviations ``response`` defines ("diabetic ketoacidosis (DKA)" -> {"DKA": "diabetic
    ketoacidosis"}): the most words just before the bracket that the abbreviation stands for, the first
    not one of ``_SKIPPABLE`` ("intracranial hypertension" fits "IIH" too). None for one defined twice,
    differently: then it stands for nothing."""
    found: dict[str, str | None] = {}
    for m in _DEFINITION.finditer(response or ""):
        abbreviation = m.group(1)
        if sum(c.isupper() for c in abbreviation) < 2:
            continue
        # the (at most ten) words just before the bracket, back to the last punctuation mark
        words = re.split(r"[^\w\s'’\-]", response[max(0, m.start() - 200) : m.start()])[-1].split()[-10:]
        for n in range(len(words), 0, -1):
            long = " ".join(words[-n:])
            folded = _WORD.findall(_fold(long))
            if folded and folded[0] not in _SKIPPABLE and _fits(abbreviation, folded):
                before = found.get(abbreviation)
                if before is not None and _keys(before).isdisjoint(_keys(long)):
                    found[abbreviation] = None  # two meanings
                else:
                    found.setdefault(abbreviation, long)
                break
    return found


def _answer_forms(answer: str, gold_answer: str, definitions: dict) -> list[str]:
    """The answer as written, with the abbreviations the response defined spelled out (they replace the
    usual reading), each of two names of one disease ("Herpes zoster (shingles)"), and without a qualifier
    of ``_QUALIFIERS`` that the gold lacks."""
    answer = _without_restated(answer)  # "Pulmonary embolism (PE)" defines PE itself
    for abbreviation, long in definitions.items():
        pattern = rf"(?<![\w\-(]){re.escape(abbreviation)}(?![\w\-)])"  # not "(CPP)" where it is defined
        if re.search(pattern, answer):
            if long is None:
                return []
            answer = re.sub(pattern, lambda _: long, answer)
    forms = [answer]
    both = _TRAILING_BRACKET.search(answer)  # "Herpes zoster (shingles)": two names of one disease
    if both and _concepts(answer[: both.start()]) & _concepts(both.group(1)):
        forms += [answer[: both.start()], both.group(1)]
    if not _QUALIFIER_SIBLINGS.intersection(_WORD.findall(_fold(gold_answer))):
        plain = re.sub(r"\b(?:" + "|".join(_QUALIFIERS) + r")\b", " ", answer, flags=re.I)
        if plain != answer and any(c.isalnum() for c in plain):
            forms.append(plain)
    return forms


def _initialism_of(answer: str, gold_answer: str, definitions: dict) -> bool:
    """Is the answer the gold's own initialism ("TTP", "HUS", "SCLC"), or that of one of its synonyms? Three
    to ten capitals or digits, for a gold of two words or more; never an abbreviation that the response
    defined or that ``ABBREVIATIONS`` reads otherwise."""
    token = answer.strip()
    if (
        not re.fullmatch(r"[A-Z][A-Z0-9]{2,9}", token)
        or token in definitions
        or token.lower() in ABBREVIATIONS
    ):
        return False
    names = [_without_restated(gold_answer)]
    for concept in _concepts(gold_answer):
        names.extend(_synonyms()[1][concept])
    for name in names:
        words = _WORD.findall(_fold(name))
        if len([w for w in words if w not in _SKIPPABLE]) >= 2 and _fits(token, words):
            return True
    return False


def is_hedge(answer: str, gold_answer: str) -> bool:
    """The answer names alternatives ("or", "either", "vs", "differential") that the gold does not."""
    hedges = _HEDGES.intersection(_WORD.findall(_fold(answer)))
    return bool(hedges - set(_WORD.findall(_fold(gold_answer))))


def answers_match(answer: str, gold_answer: str, *, definitions: dict | None = None) -> bool:
    """Does the extracted ``answer`` name the gold answer? (rules in the module docstring).
    ``definitions``: the abbreviations the response defined (``abbreviations_defined``)."""
    if not answer or not gold_answer or is_hedge(answer, gold_answer):
        return False
    definitions = definitions or {}
    gold_keys, gold_concepts = _keys(gold_answer), _concepts(gold_answer)
    for form in _answer_forms(answer, gold_answer, definitions):
        if _keys(form) & gold_keys or _concepts(form) & gold_concepts:
            return True
    return _initialism_of(answer, gold_answer, definitions)


def grade_with_matcher(response: str, gold_answer: str) -> tuple[str | None, bool]:
    """(extracted final answer, matcher verdict). The answer's whole line is tried too, so that a
    gold text of several sentences ("Repeat the screening. Administer anti-D.") can match; the first
    sentence alone counts unless the rest of the line takes it back. A bare option letter is no answer
    unless the gold is that letter itself (a figure's region)."""
    span = _answer_span(response)
    if span is None:
        return None, False
    answer = _clean(span)
    whole = _clean(span, first_sentence=False)
    if answer and _OPTION_LETTER.fullmatch(answer) and not _OPTION_LETTER.fullmatch(gold_answer.strip(_STRIP)):
        return None, False
    definitions = abbreviations_defined(response)
    if whole and answers_match(whole, gold_answer, definitions=definitions):
        return answer, True
    first = bool(answer) and answer != whole and answers_match(answer, gold_answer, definitions=definitions)
    return answer, first and not _retracted(whole or "")


def match_freeform(response: str, gold_answer: str) -> bool:
    """Deterministic grade of a whole free-form response against the gold answer text."""
    return grade_with_matcher(response, gold_answer)[1]


# --------------------------------------------------------------------------- lm-eval hooks

# --metadata key -> (environment variable, default). The judge's API key is deliberately
# absent: docs are logged with --log_samples and metadata lands in the results file, so the
# key is read from MEDREASON_JUDGE_API_KEY / OPENAI_API_KEY at grading time (judge.resolve_api_key).
JUDGE_SETTINGS = {
    "judge_model": ("MEDREASON_JUDGE_MODEL", None),
    "judge_base_url": ("MEDREASON_JUDGE_BASE_URL", None),
    "judge_cache_dir": ("MEDREASON_JUDGE_CACHE_DIR", None),
    "judge_concurrency": ("MEDREASON_JUDGE_CONCURRENCY", 8),
    "judge_max_retries": ("MEDREASON_JUDGE_MAX_RETRIES", 5),
    "judge_timeout": ("MEDREASON_JUDGE_TIMEOUT", 120.0),
}


def judge_settings(metadata: dict) -> dict:
    """The judge settings in force (metadata wins over the environment); model None: the matcher grades."""
    if "judge_api_key" in metadata:
        raise ValueError(
            "do not pass judge_api_key in --metadata (it is written to the results file); "
            "set MEDREASON_JUDGE_API_KEY (or OPENAI_API_KEY) instead"
        )
    settings = {}
    for key, (env, default) in JUDGE_SETTINGS.items():
        value = metadata.get(key)
        if value in (None, ""):
            value = os.environ.get(env) or default
        if value is not None:
            value = type(default)(value) if default is not None else str(value)
        settings[key.removeprefix("judge_")] = value
    if settings["concurrency"] < 1:
        raise ValueError(f"judge_concurrency must be at least 1, not {settings['concurrency']}")
    return settings


def judge_column(metadata: dict) -> dict:
    """The ``judge`` column of the free-form docs (settings, never a key). With a judge configured, its
    preflight runs here, when lm-eval builds the task: a judge that cannot work stops the run before
    generation, with one line naming the setting to fix."""
    judge = judge_settings(metadata)
    if judge["model"]:
        _check_judge(judge)
    return {"judge": judge}


# `{benchmark}_dataset` for every benchmark of the registry that has free-form tasks (what the task YAML names).
for _name, _benchmark in BENCHMARKS.items():
    if _benchmark.freeform:
        globals()[f"{_name}_dataset"] = dataset_hook(_name, judge_column)
del _name, _benchmark


def prompt_freeform(doc: dict) -> str:
    """The case text without its options, asking for reasoning and a "Final answer:" line."""
    return render("eval_freeform.j2", question=doc["question"])


_CHECKED: set = set()


def _check_judge(settings: dict) -> None:
    """``Judge.check`` once per process for these settings and key (a group builds several tasks, one judge)."""
    import hashlib

    from lm_eval_medreason.evaluation.judge import resolve_api_key

    key = (tuple(sorted(settings.items())), hashlib.sha256(resolve_api_key().encode()).hexdigest())
    if key not in _CHECKED:
        _judge_for(settings).check()
        _CHECKED.add(key)


def _judge_for(settings: dict):
    from lm_eval_medreason.evaluation.judge import Judge

    return Judge(
        settings["model"],
        base_url=settings["base_url"],
        cache_dir=settings["cache_dir"],
        max_retries=settings["max_retries"],
        timeout=settings["timeout"],
    )


def grade_all(responses: list[str], docs: list[dict]) -> list[dict]:
    """Grade each (response, doc) pair; judge calls run concurrently (``judge_concurrency``, default 8)."""
    graded = []
    for response, doc in zip(responses, docs):
        response = response or ""  # an API backend may return None for a failed request
        answer, matcher = grade_with_matcher(response, doc["answer"])
        graded.append(
            {
                "answer": answer,
                "output_tokens": count_tokens(response, doc.get("token_encoding")),
                "grader": "matcher",
                "correct": matcher,
                "matcher_correct": matcher,
                "judge_error": False,
            }
        )
    settings = (docs[0].get("judge") or {}) if docs else {}
    if not settings.get("model"):
        return graded
    judge = _judge_for(settings)
    for item in graded:
        item["grader"] = f"judge:{judge.model}"
    todo = [(item, doc) for item, doc in zip(graded, docs) if item["answer"] is not None]

    def ask(pair):
        item, doc = pair
        return judge.grade(doc["question"], doc["answer"], item["answer"])

    with ThreadPoolExecutor(max_workers=settings["concurrency"], thread_name_prefix="judge") as pool:
        verdicts = pool.map(ask, todo)
        for (item, _), verdict in zip(todo, _progress(verdicts, len(todo))):
            item["correct"] = verdict.correct
            item["judge_error"] = verdict.error is not None
            if verdict.error:
                item["error"] = verdict.error
    return graded


def _progress(iterable, total: int):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc="LLM judge", disable=total == 0)


class GradeFreeform(Filter):
    """lm-eval filter: every response of the task becomes the JSON of its grade (kept in the sample log):
    ``{"answer": str | null, "output_tokens": int, "grader": "judge:<model>" | "matcher",
    "correct": bool | null, "matcher_correct": bool, "judge_error": bool}``, plus ``"error"`` (why)
    on a judge error, the only case where ``correct`` is null. A response with no final answer is
    wrong under either grader and no judge is asked. The judge settings come from the docs' ``judge``
    column (one run, one setting); all of a task's judge calls go through one thread pool.
    """

    def apply(self, resps, docs):
        flat = [(response, doc) for responses, doc in zip(resps, docs) for response in responses]
        grades = iter(grade_all([r for r, _ in flat], [d for _, d in flat]))
        return [[json.dumps(next(grades), ensure_ascii=False) for _ in responses] for responses in resps]


def process_results(doc: dict, results: list) -> dict:
    """Per-sample metrics: ``acc``, ``output_tokens``, ``no_answer``, ``judge_error``, ``judged``
    (1.0 when the LLM judge is the grader), ``matcher_agreement`` (judge verdict == matcher verdict).

    ``acc`` is left out on a judge error, and ``matcher_agreement`` wherever there is no judge
    verdict (matcher runs, no final answer, judge errors). lm-eval 0.4.13 aggregates each metric
    over the docs that returned it (``evaluator_utils``), so ``mean`` averages ``acc`` over the
    graded samples only: a judge error is never a wrong answer. lm-eval warns when metrics were
    scored on different numbers of docs; that is expected here. Groups still weight each task by
    its size (the study's weighting), not by its number of graded samples.
    """
    graded = json.loads(results[0])
    judged = graded["grader"].startswith("judge:")
    metrics = {
        "output_tokens": float(graded["output_tokens"]),
        "no_answer": float(graded["answer"] is None),
        "judge_error": float(graded["judge_error"]),
        "judged": float(judged),
    }
    if graded["correct"] is not None:
        metrics["acc"] = float(graded["correct"])
    if judged and graded["answer"] is not None and graded["correct"] is not None:
        metrics["matcher_agreement"] = float(graded["correct"] == graded["matcher_correct"])
    return metrics
