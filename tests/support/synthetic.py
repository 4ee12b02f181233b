"""Small SYNTHETIC benchmark files in each upstream format, for tests (never copies of the real data).

The main entry point is ``write_data_dir(root, n=6, seed=0)``: it writes a folder laid
out like ``shared/data`` (and like the ``data_dir`` the loaders accept) and returns
what a test needs to check the loaded cases:

    info = write_data_dir(tmp_path / "data")
    load_cases("medqa", {"data_dir": str(info["root"])})  # ids == info["ids"]["medqa"]

The row builders (``medqa_rows``, ``medbullets_rows``, ``jama_rows``, ...) and the
writers (``write_jsonl``, ``write_csv``, ``write_json``) are there for tests that
need a single file, often with one row broken on purpose.
"""

from __future__ import annotations

import csv
import json
import random
import uuid
from pathlib import Path

LETTERS = "ABCDE"
OPTION_COLUMNS = ("opa", "opb", "opc", "opd", "ope")
JAMA_COLUMNS = ["link", "question", "opa", "opb", "opc", "opd", "diagnosis", "answer_idx", "answer", "explanation", "field"]

# (presentation, question, correct option, four distractors): short clinical vignettes.
_VIGNETTES = [
    (
        "presents with crushing substernal chest pain radiating to the left arm for 40 minutes. "
        "An ECG shows ST elevation in leads II, III and aVF.",
        "Which of the following arteries is most likely occluded?",
        "Right coronary artery",
        ["Left anterior descending artery", "Left circumflex artery", "Left main coronary artery", "Internal thoracic artery"],
    ),
    (
        "has had fever, neck stiffness and photophobia for one day. "
        "Cerebrospinal fluid shows neutrophilic pleocytosis and a low glucose concentration.",
        "Which of the following is the most appropriate next step in management?",
        "Empiric intravenous ceftriaxone and vancomycin",
        ["Oral amoxicillin", "Intravenous acyclovir alone", "Repeat lumbar puncture in 48 hours", "Antipyretics and observation"],
    ),
    (
        "reports polyuria, polydipsia and a 5-kg weight loss over 3 weeks. "
        "Serum glucose is 412 mg/dL and urine ketones are positive.",
        "Which of the following is the most likely diagnosis?",
        "Type 1 diabetes mellitus",
        ["Central diabetes insipidus", "Primary polydipsia", "Hyperthyroidism", "Cushing syndrome"],
    ),
    (
        "has fatigue, pallor and spoon-shaped nails. Hemoglobin is 9.1 g/dL, "
        "mean corpuscular volume is 68 fL and serum ferritin is low.",
        "Which of the following is the most likely cause of the anemia?",
        "Iron deficiency",
        ["Beta-thalassemia minor", "Anemia of chronic disease", "Vitamin B12 deficiency", "Sideroblastic anemia"],
    ),
    (
        "has painless jaundice and a 7-kg weight loss over 2 months. "
        "Examination shows a palpable, nontender gallbladder.",
        "Which of the following is the most likely diagnosis?",
        "Adenocarcinoma of the pancreatic head",
        ["Choledocholithiasis", "Acute hepatitis A", "Primary biliary cholangitis", "Gilbert syndrome"],
    ),
    (
        "describes sudden, painless loss of vision in the right eye 1 hour ago. "
        'Funduscopy shows a pale retina with a "cherry-red" spot at the macula.',
        "Which of the following is the most likely diagnosis?",
        "Central retinal artery occlusion",
        ["Retinal detachment", "Acute angle-closure glaucoma", "Central retinal vein occlusion", "Vitreous hemorrhage"],
    ),
    (
        "has a photosensitive malar rash, joint pain in both hands and oral ulcers. "
        "Antibodies to double-stranded DNA are present.",
        "Which of the following is the most likely diagnosis?",
        "Systemic lupus erythematosus",
        ["Rheumatoid arthritis", "Dermatomyositis", "Psoriatic arthritis", "Sarcoidosis"],
    ),
    (
        "has had wheezing and a nocturnal cough 3 nights a week for 2 months. "
        "Spirometry shows airflow obstruction that reverses with albuterol.",
        "Which of the following is the most appropriate long-term therapy?",
        "Low-dose inhaled corticosteroid",
        ["Daily oral prednisone", "Long-acting beta-agonist alone", "Oral theophylline", "No maintenance therapy"],
    ),
]

_JAMA_JOURNALS = ["jamadermatology", "jamaophthalmology", "jamacardiology", "jamaneurology", "jamaoncology", "jama"]
_JAMA_FIELDS = ["Dermatology", "Ophthalmology", "Cardiology", "Neurology", "Oncology", ""]  # "" = no field scraped


def vignette(i: int, rng: random.Random) -> tuple[str, str, list[str]]:
    """The i-th synthetic case: (question text, correct option, distractors)."""
    presentation, question, correct, distractors = _VIGNETTES[i % len(_VIGNETTES)]
    age = rng.randint(19, 84)
    sex = rng.choice(["man", "woman"])
    text = f"A {age}-year-old {sex} {presentation} {question}"
    return text, correct, list(distractors)


def gold_positions(n: int, n_options: int, rng: random.Random) -> list[int]:
    """Gold option positions that cover every letter evenly (shuffled blocks of 0..n_options-1)."""
    positions: list[int] = []
    while len(positions) < n:
        block = list(range(n_options))
        rng.shuffle(block)
        positions.extend(block)
    return positions[:n]


def place_options(correct: str, distractors: list[str], gold: int, rng: random.Random) -> tuple[list[str], str]:
    """Shuffled distractors with the correct text at position ``gold``; returns (texts, gold letter)."""
    texts = list(distractors)
    rng.shuffle(texts)
    texts.insert(gold, correct)
    return texts, LETTERS[gold]


def medqa_rows(n: int, n_options: int = 4, seed: int = 0, realidx: bool = True) -> list[dict]:
    """MedQA JSONL rows (keys as upstream); realidx only in the 4-option layout, as upstream."""
    rng = random.Random(seed)
    rows = []
    for i, pos in enumerate(gold_positions(n, n_options, rng)):
        question, correct, distractors = vignette(i, rng)
        texts, gold = place_options(correct, distractors[: n_options - 1], pos, rng)
        row = {"realidx": 100 + i} if realidx else {}
        row.update(
            question=question,
            answer=correct,
            options=dict(zip(LETTERS, texts)),
            meta_info="step1" if i % 3 != 2 else "step2&3",
            answer_idx=gold,
        )
        if realidx:
            row["metamap_phrases"] = question.lower().rstrip("?").split(". ")[:3]
        rows.append(row)
    return rows


def medbullets_columns(n_options: int) -> list[str]:
    """The upstream Medbullets CSV header for 4 or 5 options."""
    return ["link", "question", *OPTION_COLUMNS[:n_options], "answer_idx", "answer", "explanation"]


def medbullets_rows(n: int, n_options: int = 5, seed: int = 0) -> list[dict]:
    """Medbullets CSV rows; the explanation spans lines and holds commas and quotes, as upstream."""
    rng = random.Random(seed)
    rows = []
    for i, pos in enumerate(gold_positions(n, n_options, rng)):
        question, correct, distractors = vignette(i, rng)
        texts, gold = place_options(correct, distractors[: n_options - 1], pos, rng)
        row = {"link": f"https://step2.medbullets.com/testview?qid={210000 + i}", "question": question}
        row.update(zip(OPTION_COLUMNS, texts))
        row.update(
            answer_idx=gold,
            answer=correct,
            explanation=f'The answer is "{correct}".\n\nIncorrect answers:\nAnswer 1: {texts[0]}, see above.',
        )
        rows.append(row)
    return rows


def jama_link(i: int) -> str:
    """A synthetic JAMA article URL (same shape as the real ones)."""
    return f"https://jamanetwork.com/journals/{_JAMA_JOURNALS[i % len(_JAMA_JOURNALS)]}/fullarticle/{2790000 + 17 * i}"


def jama_rows(n: int, seed: int = 0) -> list[dict]:
    """Scraped-JAMA CSV rows (jama_scraper.py columns); one in six has an empty field, as some pages do."""
    rng = random.Random(seed)
    rows = []
    for i, pos in enumerate(gold_positions(n, 4, rng)):
        question, correct, distractors = vignette(i, rng)
        texts, gold = place_options(correct, distractors[:3], pos, rng)
        rows.append(_jama_row(jama_link(i), question, texts, gold, _JAMA_FIELDS[i % len(_JAMA_FIELDS)]))
    return rows


def jama_rows_for_key(key: list[dict], seed: int = 0) -> list[dict]:
    """Synthetic scraped rows for answer-key entries: real links and gold letters, made-up text around the answer."""
    rng = random.Random(seed)
    rows = []
    for i, entry in enumerate(key):
        question, _, distractors = vignette(i, rng)
        distractors = [d for d in distractors if d != entry["answer"]][:3]
        gold_pos = LETTERS.index(entry["answer_idx"])
        texts = distractors[:gold_pos] + [entry["answer"]] + distractors[gold_pos:]
        rows.append(_jama_row(entry["link"], question, texts, entry["answer_idx"], _JAMA_FIELDS[i % 5]))
    return rows


def _jama_row(link: str, question: str, texts: list[str], gold: str, field: str) -> dict:
    """One jama_raw.csv row."""
    row = {"link": link, "question": question}
    row.update(zip(OPTION_COLUMNS, texts))
    answer = texts[LETTERS.index(gold)]
    row.update(
        diagnosis=answer,
        answer_idx=gold,
        answer=answer,
        explanation=f"Discussion\nThe findings, taken together, support {answer}.",
        field=field,
    )
    return row


_MEDMCQA_SUBJECTS = [("Medicine", "Cardiology"), ("Medicine", None), ("Pathology", "Hematology"),
                     ("Ophthalmology", "Retina"), ("Pharmacology", None)]


def medmcqa_rows(n: int, seed: int = 0, first: int = 1) -> list[dict]:
    """MedMCQA rows as upstream: id, question, opa..opd, cop (the correct option counted from ``first``: 1 in
    dev.json of the original release, 0 in the hub dataset openlifescienceai/medmcqa), choice_type, exp,
    subject_name, topic_name (null in some rows, as upstream). The same seed gives the same questions."""
    rng = random.Random(seed)
    rows = []
    for i, pos in enumerate(gold_positions(n, 4, rng)):
        question, correct, distractors = vignette(i, rng)
        texts, _ = place_options(correct, distractors[:3], pos, rng)
        subject, topic = _MEDMCQA_SUBJECTS[i % len(_MEDMCQA_SUBJECTS)]
        row = {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "question": question}
        row.update(zip(OPTION_COLUMNS[:4], texts))
        row.update(cop=pos + first, choice_type="multi" if i % 4 == 3 else "single",
                   exp=f"Ans. is '{LETTERS[pos].lower()}' i.e., {correct}", subject_name=subject, topic_name=topic)
        rows.append(row)
    return rows


def answer_key(rows: list[dict]) -> list[dict]:
    """A jama_links.json-style answer key for scraped rows."""
    return [{"id": i, "link": r["link"], "answer_idx": r["answer_idx"], "answer": r["answer"]} for i, r in enumerate(rows)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Write rows as JSON Lines (UTF-8, non-ASCII kept as is)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None, lineterminator: str = "\r\n") -> Path:
    """Write rows as CSV with a header (csv module quoting, like upstream pandas.to_csv); columns may drop keys."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = columns or list(rows[0])
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator=lineterminator, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_json(path: Path, value) -> Path:
    """Write a JSON value, indented as the upstream files are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def write_data_dir(root: Path, n: int = 6, seed: int = 0) -> dict:
    """Write a synthetic data folder laid out like shared/data, with n cases per file.

    Files: medqa/medqa_us_test_4options.jsonl, medqa/medqa_us_test_5options.jsonl,
    medbullets/medbullets_op5.csv, medbullets/medbullets_op4.csv (same questions, rows
    reversed, one distractor fewer), jama/jama_raw.csv (scraped format with a field
    column), jama/jama_test_urls_646.json (about two thirds of the JAMA links, shuffled),
    jama/jama_links.json (the answer key for every JAMA row) and medmcqa/dev.json (MedMCQA's
    release format, cop 1-4).

    Returns {"root": root, "paths": {file key: Path}, "ids": {benchmark: [case ids in
    load order]}, "gold": {benchmark: [gold letters in load order]}}. File keys are those
    of lm_eval_medreason.data.registry.FILES; benchmark names those of registry.BENCHMARKS.
    """
    root = Path(root)
    rng = random.Random(seed)
    medqa4 = medqa_rows(n, 4, seed)
    medqa5 = medqa_rows(n, 5, seed + 1, realidx=False)
    bullets5 = medbullets_rows(n, 5, seed + 2)
    bullets4 = _drop_last_distractor(list(reversed(bullets5)))
    jama = jama_rows(n, seed + 3)
    medmcqa = medmcqa_rows(n, seed + 4)
    subset = [row["link"] for row in rng.sample(jama, max(1, (2 * n) // 3))]
    paths = {
        "medqa": write_jsonl(root / "medqa" / "medqa_us_test_4options.jsonl", medqa4),
        "medqa_op5": write_jsonl(root / "medqa" / "medqa_us_test_5options.jsonl", medqa5),
        "medbullets": write_csv(root / "medbullets" / "medbullets_op5.csv", bullets5, medbullets_columns(5)),
        "medbullets_op4": write_csv(root / "medbullets" / "medbullets_op4.csv", bullets4, medbullets_columns(4)),
        "jama": write_csv(root / "jama" / "jama_raw.csv", jama, JAMA_COLUMNS, lineterminator="\n"),
        "jama_subset": write_json(root / "jama" / "jama_test_urls_646.json", subset),
        "jama_key": write_json(root / "jama" / "jama_links.json", answer_key(jama)),
        "medmcqa": write_jsonl(root / "medmcqa" / "dev.json", medmcqa),
    }
    by_link = {row["link"]: row for row in jama}
    ids = {
        "medqa": [str(row["realidx"]) for row in medqa4],
        "medqa_op5": [str(i) for i in range(n)],
        "medbullets": [row["link"] for row in bullets5],
        "medbullets_op4": [row["link"] for row in bullets4],
        "jama_full": [row["link"] for row in jama],
        "jama": subset,
        "medreason_medmcqa": [row["id"] for row in medmcqa],
    }
    gold = {
        "medqa": [row["answer_idx"] for row in medqa4],
        "medqa_op5": [row["answer_idx"] for row in medqa5],
        "medbullets": [row["answer_idx"] for row in bullets5],
        "medbullets_op4": [row["answer_idx"] for row in bullets4],
        "jama_full": [row["answer_idx"] for row in jama],
        "jama": [by_link[link]["answer_idx"] for link in subset],
        "medreason_medmcqa": [LETTERS[row["cop"] - 1] for row in medmcqa],
    }
    return {"root": root, "paths": paths, "ids": ids, "gold": gold}


def _drop_last_distractor(rows: list[dict]) -> list[dict]:
    """4-option copies of 5-option Medbullets rows: remove one wrong option, keep the gold one's text."""
    out = []
    for row in rows:
        texts = [row[c] for c in OPTION_COLUMNS]
        wrong = max(i for i, text in enumerate(texts) if text != row["answer"])
        texts.pop(wrong)
        new = {k: v for k, v in row.items() if k not in OPTION_COLUMNS}
        new.update(zip(OPTION_COLUMNS, texts))
        new["answer_idx"] = LETTERS[texts.index(row["answer"])]
        out.append(new)
    return out
