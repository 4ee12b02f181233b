"""Synthetic distillation inputs and the `medreason distill` arguments shared by the distill tests."""

import random
from pathlib import Path

from lm_eval_medreason.distillation.store import read_lines

KEY = "sk-test-DISTINCTIVE-4f9a2c71e0b3"
_WORDS = ("renal", "hepatic", "cardiac", "ocular", "dermal", "febrile", "chronic", "acute", "painful", "swollen",
          "nocturnal", "bilateral", "episodic", "progressive", "tingling", "weakness", "rash", "cough", "nausea")


def cases(n: int, seed: int = 0) -> list[dict]:
    """Synthetic training cases with unique questions, each carrying the [case ID] marker the fake teacher reads."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = " ".join(rng.choice(_WORDS) for _ in range(12))
        options = {"A": f"Remedy alpha {i}", "B": f"Remedy beta {i}", "C": f"Remedy gamma {i}", "D": f"Remedy delta {i}"}
        gold = "ABCD"[i % 4]
        out.append({"id": f"c{i:02d}", "question": f"[case c{i:02d}] A patient number {i} reports {words}. Which remedy?",
                    "options": options, "answer_idx": gold, "answer": options[gold], "meta": {"n": i}})
    return out


def gold_of(rows):
    return {r["id"]: r["answer_idx"] for r in rows}


def distill_args(input_path, output, url, *extra):
    return ["distill", "--input", str(input_path), "--output", str(output), "--model", "teacher", "--base-url", url,
            "--no-contamination-check", "--no-progress", "--timeout", "1", "--max-retries", "2", *extra]


def outcomes(output: Path) -> tuple[list[dict], list[dict]]:
    return read_lines(output), read_lines(output.with_name(output.name + ".dropped.jsonl"))
