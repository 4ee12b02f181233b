"""Every benchmark and every strategy of the package, one row each: the one place they are defined.

Everything else is derived from these two tables: the loaders (``loaders``, by ``Benchmark.format``),
where files come from (``sources``, from each row's ``DataFile``), the task YAML, groups and the
README's task tables (``python -m lm_eval_medreason.evaluation.tasks``), the report's titles and
breakdowns, the contamination guard's benchmarks and the distillation budgets.

Adding a benchmark is one ``Benchmark`` row (plus, for a new file format, one loader in
``loaders.FORMATS``, and a README in its task folder); adding a strategy is one ``Strategy`` row
plus its prompt template. This module imports nothing of the package, so every part may read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA_DIR_KEY = "data_dir"
DATA_DIR_ENV = "MEDREASON_DATA_DIR"


@dataclass(frozen=True)
class DataFile:
    """One file a benchmark needs: where it sits in a data folder and its public default, if any."""

    key: str
    relpath: str
    what: str
    url: str | None = None
    hub: tuple[str, str] | None = None  # (dataset name, split)
    how_to_get: str = ""
    optional: bool = False
    revision: str | None = None  # the commit the url names, or the hub dataset's revision
    sha256: str | None = None  # of the upstream file (what a local copy is checked against)

    @property
    def metadata_key(self) -> str:
        """The lm-eval ``--metadata`` key that points at this file."""
        return f"{self.key}_path"

    @property
    def env_var(self) -> str:
        """The environment variable that points at this file."""
        return f"MEDREASON_{self.key.upper()}_PATH"

    def settings_hint(self) -> str:
        """How to point the package at a local copy, in one clause."""
        name = Path(self.relpath).name
        return (
            f"""--metadata '{{"{self.metadata_key}": "/path/to/{name}"}}' or {self.env_var}=/path/to/{name}, """
            f"or put it at <data_dir>/{self.relpath} and pass --metadata "
            f"""'{{"{DATA_DIR_KEY}": "<data_dir>"}}' or set {DATA_DIR_ENV}=<data_dir>"""
        )


@dataclass(frozen=True)
class Benchmark:
    """A set of cases: how to load it and, for an evaluated benchmark, how tasks and reports show it.

    ``name`` is the task prefix (``{name}_{strategy}``); ``format`` names the loader that reads
    ``source`` (a key of ``loaders.FORMATS``); ``meta`` copies (meta key, source column) pairs into
    each case's ``meta``; ``breakdown`` is the meta key the report breaks accuracy down by."""

    name: str
    description: str  # one line: what the cases are (`medreason data validate`, error messages)
    format: str
    source: DataFile
    meta: tuple[tuple[str, str], ...] = ()
    subset: DataFile | None = None  # a URL list that selects and orders the cases (the JAMA 646)
    answer_key: DataFile | None = None  # an optional answer key cross-checked against answer_idx
    exclude: DataFile | None = None  # a URL list whose cases are left out (JAMA train side: not the 646)
    # Evaluated benchmarks only:
    title: str = ""  # how tables and figures name it
    folder: str = ""  # tasks/<folder>/ holds its task YAML and README
    options: int = 0  # options per question
    size: int = 0  # questions in the upstream file (jama_full: the upstream scrape)
    size_note: str = ""  # what the size counts, for the README table
    breakdown: str | None = None
    freeform: bool = False  # has {name}_freeform (the option texts are answers that stand alone)
    in_study: bool = False  # one of the study's three: in the medreason_* groups and the contamination guard

    @property
    def files(self) -> tuple[DataFile, ...]:
        """Every file this benchmark reads."""
        return tuple(f for f in (self.source, self.subset, self.answer_key, self.exclude) if f is not None)


@dataclass(frozen=True)
class Strategy:
    """How the model is asked to answer: the prompt, the token budget and why, and whether (and how)
    teacher traces of it are distilled. The prompt of a distillable strategy is also the user turn of
    its distilled training examples, so a student is evaluated on the prompt it learned."""

    name: str
    prompt: str  # prompts/<prompt>: the evaluation prompt
    max_gen_toks: int  # evaluation budget
    why: str  # why that budget
    asks_for: str  # what the model is asked for (README)
    multiple_choice: bool = True  # False: options withheld, graded against the answer text (free-form)
    distill_max_tokens: int | None = None  # teacher budget (non-reasoning teachers); None: not distilled
    distill_min_tokens: int = 0  # shortest trace kept as training data (tiktoken tokens)

    @property
    def distillable(self) -> bool:
        return self.distill_max_tokens is not None


def _table(rows) -> dict:
    """Rows by name, in the given order; a repeated name is a bug in this module."""
    table = {row.name: row for row in rows}
    assert len(table) == len(rows), f"duplicate names in {[row.name for row in rows]}"
    return table


# ---------------------------------------------------------------- files

# Pinned upstream commits (the newest at the time of pinning; the files have not changed since).
CCQA_COMMIT = "ef3c9da03fc17f46fbd95ce860e0a55c51ed3606"  # HanjieChen/ChallengeClinicalQA, 2024-08-21
OPHIUCHUS_COMMIT = "34c60f0b83f570507131de5d3c97799bea03e74e"  # SPIRAL-MED/Ophiuchus, 2025-01-14
MEDQA_HUB_REVISION = "0fb93dd23a7339b6dcd27e241cb9b5eca62d4d18"  # GBaker/MedQA-USMLE-4-options, main
# openlifescienceai/medmcqa, the revision of 2024-01-04 (data/*.parquet), as pinned by other public code.
MEDMCQA_HUB_REVISION = "91c6572c454088bf71b679ad90aa8dffcd0d5868"
_CCQA = f"https://raw.githubusercontent.com/HanjieChen/ChallengeClinicalQA/{CCQA_COMMIT}"
_OPHIUCHUS = f"https://raw.githubusercontent.com/SPIRAL-MED/Ophiuchus/{OPHIUCHUS_COMMIT}"

MEDQA_TEST = DataFile(
    "medqa",
    "medqa/medqa_us_test_4options.jsonl",
    "MedQA USMLE test set, 4 options (JSONL)",
    hub=("GBaker/MedQA-USMLE-4-options", "test"),
    revision=MEDQA_HUB_REVISION,
    # xk-huang/medagents-benchmark data/medqa/test.jsonl (jind11/MedQA with realidx)
    sha256="b0536be0ff396be91eb0cf61a42056b0abef06a23e7e8be491d62fd959b77b72",
)
MEDQA_TRAIN = DataFile(
    "medqa_train",
    "medqa/medqa_us_train_4options.jsonl",
    "MedQA USMLE train set, 4 options (JSONL; distillation input, never evaluated)",
    hub=("GBaker/MedQA-USMLE-4-options", "train"),
    revision=MEDQA_HUB_REVISION,
)
MEDQA_OP5 = DataFile(
    "medqa_op5",
    "medqa/medqa_us_test_5options.jsonl",
    "MedQA USMLE test set, 5 options (JSONL)",
    how_to_get="it has no download source: take eval_data/medqa_test.jsonl from https://github.com/UCSC-VLAA/MedReason",
    sha256="cfa75cbcc53c29b023752b0a395ff49d8202121041392735ae44771a5ec734a3",  # MedReason's copy
)
MEDBULLETS_OP5 = DataFile(
    "medbullets",
    "medbullets/medbullets_op5.csv",
    "Medbullets, 5 options (CSV)",
    url=f"{_CCQA}/medbullets/medbullets_op5.csv",
    revision=CCQA_COMMIT,
    sha256="7da4b1397418b4bd15074066ea6a377ac44a599794a959cd8ebc76937ea597e6",
)
MEDBULLETS_OP4 = DataFile(
    "medbullets_op4",
    "medbullets/medbullets_op4.csv",
    "Medbullets, 4 options (CSV)",
    url=f"{_CCQA}/medbullets/medbullets_op4.csv",
    revision=CCQA_COMMIT,
    sha256="f35c24c7940fd3fd28594a4081e66bded3718cd98b4491d0f307d34ceb945893",
)
JAMA_RAW = DataFile(
    "jama",
    "jama/jama_raw.csv",
    "scraped JAMA Clinical Challenge cases (jama_raw.csv)",
    how_to_get="JAMA cases are copyrighted and never shipped: run jama_scraper.py from "
    "https://github.com/HanjieChen/ChallengeClinicalQA (with access to JAMA full text); it writes jama_raw.csv",
)
JAMA_SUBSET = DataFile(
    "jama_subset",
    "jama/jama_test_urls_646.json",
    "the 646-case JAMA evaluation subset (JSON list of URLs)",
    url=f"{_OPHIUCHUS}/resources/JAMA_test_urls.json",
    revision=OPHIUCHUS_COMMIT,
    sha256="86104b122288c39d80335f6c2c1910e0ea3f93c76c4de750466d6dd7ce57ec19",
)
JAMA_KEY = DataFile(
    "jama_key",
    "jama/jama_links.json",
    "JAMA answer key (jama_links.json)",
    optional=True,
    sha256="a062df30517552a0c9085053a7d5d08a8fb49b5227e8cf12233b4dd9d064212e",  # ChallengeClinicalQA's
)
MEDMCQA_DEV = DataFile(
    "medmcqa",
    "medmcqa/dev.json",
    "MedMCQA validation set (dev.json of the original release: JSON lines, cop 1-4)",
    hub=("openlifescienceai/medmcqa", "validation"),
    revision=MEDMCQA_HUB_REVISION,
)

# ---------------------------------------------------------------- benchmarks

_MEDQA_META = (("step", "meta_info"),)
_MEDBULLETS_META = (("link", "link"),)
_JAMA_META = (("link", "link"), ("field", "field"))
_MEDMCQA_META = (("subject", "subject_name"), ("topic", "topic_name"), ("choice_type", "choice_type"))

# The study's three first, in the order of its Table 1; then the variants; then the other benchmarks.
BENCHMARKS: dict[str, Benchmark] = _table((
    Benchmark("jama", "JAMA Clinical Challenge, the study's 646-case subset", "ccqa_csv", JAMA_RAW, _JAMA_META,
              subset=JAMA_SUBSET, answer_key=JAMA_KEY, title="JAMA", folder="jama", options=4, size=646,
              size_note="the study's subset", breakdown="field", freeform=True, in_study=True),
    Benchmark("medbullets", "Medbullets Step 2/3, 5 options", "ccqa_csv", MEDBULLETS_OP5, _MEDBULLETS_META,
              title="Medbullets", folder="medbullets", options=5, size=308, freeform=True, in_study=True),
    Benchmark("medqa", "MedQA USMLE (US) test, 4 options", "medqa_jsonl", MEDQA_TEST, _MEDQA_META,
              title="MedQA", folder="medqa", options=4, size=1273, size_note="US test", breakdown="step",
              freeform=True, in_study=True),
    Benchmark("jama_full", "JAMA Clinical Challenge, every scraped case", "ccqa_csv", JAMA_RAW, _JAMA_META,
              answer_key=JAMA_KEY, title="JAMA (all)", folder="jama", options=4, size=1524,
              size_note="upstream; all you scraped", breakdown="field", freeform=True),
    Benchmark("medbullets_op4", "Medbullets Step 2/3, 4 options", "ccqa_csv", MEDBULLETS_OP4, _MEDBULLETS_META,
              title="Medbullets (4 opt.)", folder="medbullets", options=4, size=308),
    Benchmark("medqa_op5", "MedQA USMLE (US) test, 5 options", "medqa_jsonl", MEDQA_OP5, _MEDQA_META,
              title="MedQA (5 opt.)", folder="medqa", options=5, size=1273, size_note="US test", breakdown="step"),
    # Named apart from lm-eval's own `medmcqa` task (log-likelihood of the option letter): every task of
    # ours is medreason_medmcqa_*, in this package's medreason_ namespace, which lm-eval has no task in.
    Benchmark("medreason_medmcqa", "MedMCQA (AIIMS/NEET PG) validation, 4 options", "medmcqa_jsonl",
              MEDMCQA_DEV, _MEDMCQA_META, title="MedMCQA", folder="medmcqa", options=4, size=4183,
              size_note="validation", breakdown="subject"),
))

# Distillation inputs (`medreason distill --input medqa-train`): loaded like benchmarks, never evaluated.
TRAIN_SPLITS: dict[str, Benchmark] = _table((
    Benchmark("medqa_train", "MedQA USMLE (US) train, 4 options", "medqa_jsonl", MEDQA_TRAIN, _MEDQA_META),
    Benchmark("jama_train", "JAMA Clinical Challenge, the scraped cases outside the study's 646-case subset",
              "ccqa_csv", JAMA_RAW, _JAMA_META, answer_key=JAMA_KEY, exclude=JAMA_SUBSET),
))

# ---------------------------------------------------------------- strategies

# Evaluation budgets leave room for the longest answers of each style; decoding is greedy, `until` empty.
STRATEGIES: dict[str, Strategy] = _table((
    Strategy("vanilla", "eval_vanilla.j2", 256, "the option letter only; room for a one-line justification",
             "the option letter only (the study's \"Vanilla\")"),
    Strategy("cot", "eval_cot.j2", 2048, "step-by-step reasoning of a few hundred tokens",
             "step-by-step reasoning, then \"The answer is (X)\" (\"Vanilla CoT\")",
             distill_max_tokens=2048, distill_min_tokens=0),  # a CoT trace may well be short
    Strategy("longstep", "eval_longstep.j2", 4096, "a long numbered analysis that goes through every option",
             "a numbered analysis: key findings, differential, exclusion of each option, conclusion",
             distill_max_tokens=4096, distill_min_tokens=300),
    Strategy("longmonolog", "eval_longmonolog.j2", 8192,
             "reflective monologue; the study's LongMonolog outputs average ~1,100 tokens with a long tail",
             "a reflective inner monologue that weighs hypotheses and corrects itself, then a conclusion",
             distill_max_tokens=8192, distill_min_tokens=500),
    Strategy("freeform", "eval_freeform.j2", 4096,
             "step-by-step reasoning with no options to lean on: longer than CoT, shorter than LongMonolog",
             "the case without its options: reasoning, then \"Final answer: ...\" (the study's section 3.5)",
             multiple_choice=False),
))

# Every file any benchmark or train split reads, by key (what `sources.resolve` looks up).
FILES: dict[str, DataFile] = {}
for _row in (*BENCHMARKS.values(), *TRAIN_SPLITS.values()):
    for _file in _row.files:
        assert FILES.setdefault(_file.key, _file) is _file, f"two files with key {_file.key!r}"
del _row, _file


def study_benchmarks() -> tuple[str, ...]:
    """The study's three, in its Table 1 order."""
    return tuple(name for name, b in BENCHMARKS.items() if b.in_study)


def multiple_choice_strategies() -> tuple[str, ...]:
    """The strategies that show the options (every benchmark gets a task and a vote task for each)."""
    return tuple(name for name, s in STRATEGIES.items() if s.multiple_choice)


def distillable_strategies() -> tuple[str, ...]:
    return tuple(name for name, s in STRATEGIES.items() if s.distillable)
