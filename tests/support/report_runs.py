"""Real `lm_eval` runs for the report tests: a scripted OpenAI-compatible server answers two models under
medreason_cot and medreason_longmonolog (and alpha's medreason_cot_maj), so that every figure is known by hand."""

import csv
import json
import struct
import subprocess
import sys
from pathlib import Path

from lm_eval_medreason.data.loaders import load_cases
from lm_eval_medreason.resources import tasks_dir
from tests.support.fake_openai import fake_chat_server
from tests.support.lm_eval_run import run_lm_eval
from tests.support.synthetic import write_data_dir

MEDREASON = str(Path(sys.executable).with_name("medreason"))
STUDY = ("jama", "medbullets", "medqa")
STRATEGIES = ("cot", "longmonolog")
# model -> strategy -> is question i answered right (different accuracies per model and strategy)
MODELS = {
    "alpha": {"cot": lambda i: i % 4 != 3, "longmonolog": lambda i: i % 5 != 4},
    "beta": {"cot": lambda i: i % 2 == 0, "longmonolog": lambda i: i % 3 != 2},
}
HAS_MAJ = any(tasks_dir().glob("*/*_maj.yaml"))
FIGURES = ("figure2_mean_accuracy_by_strategy.png", "figure3_accuracy_vs_tokens.png", "figure5_per_benchmark.png")


def cases_by_question(data: dict) -> dict[str, tuple[int, dict]]:
    """question text -> (index within its benchmark, case)."""
    return {case["question"].strip(): (i, case) for b in STUDY
            for i, case in enumerate(load_cases(b, {"data_dir": str(data["root"])}))}


def lookup(cases, prompt):
    return next(found for question, found in cases.items() if question in prompt)


def wrong_letter(case, shift: int = 0) -> str:
    others = [letter for letter in case["options"] if letter != case["answer_idx"]]
    return others[shift % len(others)]


def scripted(cases: dict, rules: dict):
    """CoT: a short reasoning; LongMonolog: a long one whose length varies by question; beta refuses the first JAMA case."""
    def answer(prompt: str) -> str:
        i, case = lookup(cases, prompt)
        strategy = "longmonolog" if "inner monologue" in prompt else "cot"
        letter = case["answer_idx"] if rules[strategy](i) else wrong_letter(case, i)
        if rules is MODELS["beta"] and i == 0 and case["id"].startswith("https://jamanetwork"):
            return "I cannot determine this from the information given."
        if strategy == "cot":
            return f"The findings point one way.\n\nThe answer is ({letter})."
        return "Hmm, wait, let me reconsider the findings. " * (3 + i % 7) + f"\n\nThe answer is ({letter})."
    return answer


def voting(cases: dict):
    """32 sampled answers per question: the n-th request for a question is right when (n + i) % 3 != 0, else one of
    two wrong letters; every fourth question is mostly wrong. So maj@k varies with k and between questions."""
    counts = {}

    def answer(prompt: str) -> str:
        i, case = lookup(cases, prompt)
        n = counts[case["id"]] = counts.get(case["id"], 0) + 1
        right = (n + i) % 3 == 0 if i % 4 == 0 else (n + i) % 3 != 0
        letter = case["answer_idx"] if right else wrong_letter(case, n)
        return f"Considering the options ({n}).\n\nThe answer is ({letter})."
    return answer


def report(*args, check=True):
    result = subprocess.run([MEDREASON, "report", *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def samples(out: Path, model: str, task: str) -> list[dict]:
    (path,) = (out / model).glob(f"samples_{task}_2*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def group_result(out: Path, model: str, group: str, metric: str) -> float:
    for path in (out / model).glob("results_*.json"):
        results = json.loads(path.read_text())["results"]
        if group in results:
            return results[group][f"{metric},final-answer"]
    raise AssertionError(f"{group} not in {model}'s results")


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def make_runs(root: Path) -> Path:
    """OUT/alpha and OUT/beta from real lm_eval runs of medreason_cot and medreason_longmonolog; with the _maj
    tasks, alpha also has a second run (another timestamp, same folder) of medreason_cot_maj."""
    data = write_data_dir(root / "data", n=12)
    cases = cases_by_question(data)
    out = root / "out"
    metadata = json.dumps({"data_dir": str(data["root"])})

    def lm_eval(model: str, answer, tasks: str):
        with fake_chat_server(answer) as (url, _):
            run_lm_eval(["--model", "local-chat-completions", "--apply_chat_template", "--model_args",
                         f"model={model},base_url={url},num_concurrent=1,max_retries=1,tokenizer_backend=none",
                         "--tasks", tasks, "--metadata", metadata], out)

    for model, rules in MODELS.items():
        lm_eval(model, scripted(cases, rules), ",".join(f"medreason_{s}" for s in STRATEGIES))
    if HAS_MAJ:
        lm_eval("alpha", voting(cases), "medreason_cot_maj")
    return out


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])
