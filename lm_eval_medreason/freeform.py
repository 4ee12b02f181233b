"""Free-form answers (the study's section 3.5): the options are withheld, the model names one answer.

Hooks for the ``{benchmark}_freeform`` task YAML: ``<benchmark>_dataset`` (the cases plus
the judge settings), ``prompt_freeform``, the ``graded`` filter ``GradeFreeform`` and
``process_results``. The deterministic matcher ``match_freeform`` grades when no LLM judge
is configured; with one (``lm_eval_medreason.judge``), the judge grades and the matcher's
verdict is kept beside it, so that their agreement is measured.

Final-answer extraction (``extract_final_answer``), in order:

1. Only the text after the last ``</think>`` counts; a ``<think>`` left open (reasoning cut
   off) gives None.
2. The last "Final answer: X" / "Final diagnosis: X" ("**Final answer:** X", "Final answer is X",
   a "Final answer" heading with X on the next line) that names something.
3. Else the last "The answer is X", "Answer: X", "The (most likely) diagnosis is X", ``\\boxed{X}``.
4. Else, with no such label at all, a reply that is one short line (12 words at most) is the
   answer itself, unless it is a refusal or a question ("I cannot determine...", "...?").
X ends at the end of its line or sentence (". " before a capital, " because ", " since ", " - ");
markdown, ``\\boxed{}``/``\\text{}``, quotes, a trailing period and a leading "The diagnosis is"
are stripped. Nothing left: None (counted as ``no_answer``, and wrong under either grader).

Matching (``answers_match(answer, gold)``): the answer matches the gold text when one of
their forms is equal after normalisation:
- case, accents (NFKD), Greek letters (β = beta), punctuation, possessive 's, the words
  "a", "an", "the", "of", plural -s/-ies, Roman numerals I-X (type I = type 1) are ignored;
- hyphens both as spaces and as nothing ("beta-thalassemia", "beta thalassemia",
  "betathalassemia"); spaces are ignored when the words are in the same order;
- word order within a clause is ignored ("lupus nephritis" = "nephritis lupus"), and so is the
  order of clauses split at commas, semicolons, "and", "plus", "&" ("ceftriaxone and
  vancomycin" = "vancomycin and ceftriaxone") -- but each modifier stays bound to the word it
  modifies ("increased PTH, decreased calcium" is not "decreased PTH, increased calcium";
  "left ventricle" is not "right ventricle"), see ``_MODIFIERS``; and a text holding
  < > = + / or arrows ("25/250", "LOD score > 3", "A > B > C") is compared in order only;
- an index form "nephritis, lupus" also reads, in that order, as "lupus nephritis";
- a trailing bracket may be left out ("Pulmonary embolism (PE)" = "Pulmonary embolism"), and a
  trailing bracketed abbreviation that can stand for all the words before it (same first
  letter, no more words than letters) matches alone: "SLE" = "Systemic lupus erythematosus (SLE)",
  but "HgbF" is not "Increases levels of fetal hemoglobin (HgbF)";
- the very common abbreviations of ``ABBREVIATIONS`` (MI, PE, DVT, COPD, CHF, SLE, TB, UTI,
  DKA, ...) are expanded on both sides.
Everything else must be equal: "type 1" vs "type 2 diabetes", "acute myeloid" vs "acute
lymphoblastic leukemia", "Hepatitis B" vs "Hepatitis C", "diabetes" vs "type 1 diabetes mellitus"
never match (the matcher is strict; synonyms are the judge's job). A hedge never matches: an
answer holding "or", "either", "vs"/"versus" or "differential" that the gold does not hold
("either X or Y", "X, Y or Z", "differential includes X and Y"). ``match_freeform`` also tries
the answer's whole line, so that a gold text of several sentences can match. On the real MedQA and
Medbullets files no distractor option matches its question's gold answer (a test checks this).
"""

import json
import os
import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from lm_eval.api.filter import Filter

from lm_eval_medreason import harness
from lm_eval_medreason.prompts import render
from lm_eval_medreason.tokens import count_tokens

# --------------------------------------------------------------------------- extraction

_FINAL = re.compile(
    r"final\s+(?:answer|diagnosis)\b[ \t*_`]*(?:is\b|[:：=\-–—])|^[ \t#>*_`]*final\s+(?:answer|diagnosis)[ \t*_`]*$",
    re.I | re.M,
)
_COMMIT = re.compile(
    r"\b(?:answer\s*(?:is\b|would\s+be\b|[:：])|(?<!differential )diagnosis\s*(?:is\b|[:：]))|\\boxed\s*\{", re.I
)
_SENTENCE_END = re.compile(r"\.\s+(?=[A-Z(])|\s+(?:because|since)\b|\s[—–-]\s")
_BOILERPLATE = re.compile(
    r"^(?:(?:the|my)\s+)?(?:(?:most\s+)?(?:likely|probable)\s+|final\s+|correct\s+|best\s+)*"
    r"(?:diagnosis|answer|cause|etiology|treatment|management|next\s+step)\s*(?:is|would\s+be|:)\s*"
    r"|^(?:most\s+likely|probably|likely)\s+",
    re.I,
)
_STRIP = " \t:：*_`#>\"'“”$.,!"
_SHORT_REPLY_WORDS = 12
# A short reply that is a refusal or a question is no answer (only for unlabelled replies: gold
# texts such as "Hypothesis testing cannot be performed" hold these words too).
_REFUSAL = re.compile(
    r"\b(?:cannot|can['’]?t|can\s+not|unable|not\s+sure|unsure|(?:do\s+not|don['’]?t)\s+know|"
    r"insufficient|not\s+enough|more\s+information)\b|\?\s*$",
    re.I,
)


def _after_reasoning(response: str) -> str | None:
    """Text after the last closed <think> block; None when a block is left open (cut off)."""
    close = response.rfind("</think>")
    if response.rfind("<think>") > close:
        return None
    return response[close + len("</think>") :] if close >= 0 else response


def _clean(span: str, first_sentence: bool = True) -> str | None:
    """The answer in ``span``: its first line (and sentence), without markdown, LaTeX or boilerplate."""
    for _ in range(2):  # \boxed{\text{X}}
        span = re.sub(r"\\(?:boxed|text|textbf|mathrm)\s*\{([^{}]*)\}?", r"\1", span)
    span = span.replace("**", "").replace("__", "").strip(_STRIP + "{}").split("\n", 1)[0]
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
    text = _after_reasoning(response or "")
    if not text or not text.strip():
        return None
    labelled = False
    for pattern in (_FINAL, _COMMIT):
        for match in reversed(list(pattern.finditer(text))):  # the last label naming something wins
            labelled = True
            span = _span_after(text, match.end())
            if _clean(span):
                return span
    if labelled:
        return None
    lines = [ln for ln in text.splitlines() if ln.strip(_STRIP)]
    if len(lines) == 1 and len(lines[0].split()) <= _SHORT_REPLY_WORDS and not _REFUSAL.search(lines[0]):
        return lines[0]
    return None


def extract_final_answer(response: str) -> str | None:
    """The one answer ``response`` finally named, or None (policy in the module docstring)."""
    span = _answer_span(response)
    return _clean(span) if span else None


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
_HEDGES = frozenset({"or", "either", "vs", "versus", "differential"})
_CLAUSE_SPLIT = re.compile(r"[,;&]|\b(?:and|plus)\b")
_WORD = re.compile(r"[^\W_]+")
_TRAILING_BRACKET = re.compile(r"\s*[(\[]([^()\[\]]*)[)\]]\W*$")
# Texts holding these are order-sensitive ("25/250", "LOD score > 3", "A > B > C"): matched in order only.
_ORDERED = re.compile(r"[<>≤≥=+/↑↓→]")
_SYMBOLS = str.maketrans({"<": " lt ", ">": " gt ", "≤": " le ", "≥": " ge ", "=": " eq ", "+": " plus ",
                          "↑": " up ", "↓": " down ", "→": " to "})


def _fold(text: str) -> str:
    """Case, accents, Greek letters and possessive 's folded away; symbols as words."""
    text = unicodedata.normalize("NFKD", text.casefold().translate(_GREEK))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
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


def _order_free_key(text: str) -> tuple:
    """Clauses as word multisets, each modifier paired with the word after it (see ``_MODIFIERS``)."""
    clauses = []
    for clause in _CLAUSE_SPLIT.split(text):
        words = _words(clause)
        if words:
            pairs = sorted((w, n) for w, n in zip(words, words[1:]) if w in _MODIFIERS)
            clauses.append((tuple(sorted(words)), tuple(pairs)))
    return tuple(sorted(clauses))


def _abbreviation(text: str) -> str | None:
    """"SLE" of "Systemic lupus erythematosus (SLE)": a trailing bracketed abbreviation that can stand
    for all the words before it (same first letter, no more words than letters)."""
    m = _TRAILING_BRACKET.search(text)
    if not m or not re.fullmatch(r"[A-Za-z][A-Za-z0-9\-]{1,11}", m.group(1).strip()):
        return None
    abbreviation, words = m.group(1).strip(), _WORD.findall(text[: m.start()])
    letters = [c for c in abbreviation if c.isalpha()]
    big = sum(c.isupper() for c in letters) >= 2
    fits = words and words[0][0].lower() == letters[0].lower() and len(words) <= len(letters)
    return abbreviation if big and fits else None


@lru_cache(maxsize=8192)
def _keys(text: str) -> frozenset:
    """Every form of an answer text (see the module docstring) as matching keys."""
    forms = {text}
    trailing = _TRAILING_BRACKET.search(text)
    if trailing and re.search(r"[^\W\d_]", trailing.group(1)) and re.search(r"[^\W\d_]", text[: trailing.start()]):
        forms.add(text[: trailing.start()])  # "Pulmonary embolism (PE)" -> "Pulmonary embolism"
    if _abbreviation(text):
        forms.add(_abbreviation(text))
    inverted = set()
    for form in forms:
        head, comma, tail = form.partition(",")
        if comma and "," not in tail and len(head.split()) <= 4 and len(tail.split()) <= 4:
            inverted.add(f"{tail} {head}")  # "Nephritis, lupus": an index form, read in order
    keys = set()
    for form, order_free in [*((f, True) for f in forms), *((f, False) for f in inverted)]:
        folded = _fold(form)
        for variant in {folded, re.sub(r"(?<=\w)[\-‐‑–](?=\w)", "", folded)}:  # hyphen as space / as nothing
            joined = "".join(_words(variant))
            if joined:
                keys.add(("joined", joined))
                if order_free and not _ORDERED.search(form):
                    keys.add(("order-free", _order_free_key(variant)))
    return frozenset(keys)


def is_hedge(answer: str, gold_answer: str) -> bool:
    """The answer names alternatives ("or", "either", "vs", "differential") that the gold does not."""
    hedges = _HEDGES.intersection(_WORD.findall(_fold(answer)))
    return bool(hedges - set(_WORD.findall(_fold(gold_answer))))


def answers_match(answer: str, gold_answer: str) -> bool:
    """Does the extracted ``answer`` name the gold answer? (rules in the module docstring)"""
    if not answer or not gold_answer or is_hedge(answer, gold_answer):
        return False
    return bool(_keys(answer) & _keys(gold_answer))


def grade_with_matcher(response: str, gold_answer: str) -> tuple[str | None, bool]:
    """(extracted final answer, matcher verdict). The answer's whole line is tried too, so that a
    gold text of several sentences ("Repeat the screening. Administer anti-D.") can match."""
    span = _answer_span(response)
    if span is None:
        return None, False
    answer = _clean(span)
    whole = _clean(span, first_sentence=False)
    return answer, any(answers_match(a, gold_answer) for a in {answer, whole} if a)


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


def _dataset(benchmark: str):
    """The harness's dataset hook for ``benchmark`` with a ``judge`` column (settings, never a key)."""
    cases = getattr(harness, f"{benchmark}_dataset")

    def load(**metadata):
        from datasets import DatasetDict

        judge = judge_settings(metadata)
        dataset = cases(**metadata)
        return DatasetDict({name: split.add_column("judge", [judge] * len(split)) for name, split in dataset.items()})

    load.__name__ = load.__qualname__ = f"{benchmark}_dataset"
    return load


jama_dataset = _dataset("jama")
jama_full_dataset = _dataset("jama_full")
medbullets_dataset = _dataset("medbullets")
medqa_dataset = _dataset("medqa")


def prompt_freeform(doc: dict) -> str:
    """The case text without its options, asking for reasoning and a "Final answer:" line."""
    return render("eval_freeform.j2", question=doc["question"])


def _judge_for(settings: dict):
    from lm_eval_medreason.judge import Judge

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
