"""Real `lm_eval` runs for the report tests: a scripted OpenAI-compatible server answers two models under
medreason_cot and medreason_longmonolog (and alpha's medreason_cot_maj), so that every figure is known by hand;
``make_scaling_runs`` adds the scaling tasks (_maj and _adaptive from scripted vote patterns, _budget on the tiny model)."""

import csv
import json
import random
import shutil
import struct
import subprocess
import sys
import threading
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


# ---- scaling runs: _maj and _adaptive (scripted server), _budget (tiny model) ----------------------------------

SCALING_BENCHMARKS = ("medbullets", "medqa")
BUDGETS = (4, 8, 16, 32)
# question index % 4 -> its 32 votes: (gold's, the first wrong letter's, the second's, no answer's)
VOTE_PATTERNS = {0: (32, 0, 0, 0), 1: (29, 3, 0, 0), 2: (14, 12, 6, 0), 3: (10, 16, 4, 2)}


def vote_sequence(i: int, case: dict) -> list[str | None]:
    """Question i's 32 answers in the order the server gives them: its pattern, shuffled (seeded by i)."""
    right, first, second, none = VOTE_PATTERNS[i % 4]
    votes = [case["answer_idx"]] * right + [wrong_letter(case, 0)] * first + [wrong_letter(case, 1)] * second
    votes += [None] * none
    random.Random(i).shuffle(votes)
    return votes


def patterned(cases: dict):
    """The n-th request for question i gets the n-th answer of ``vote_sequence`` (a response without an answer for None)."""
    counts, lock = {}, threading.Lock()

    def answer(prompt: str) -> str:
        i, case = lookup(cases, prompt)
        with lock:
            n = counts[case["id"]] = counts.get(case["id"], 0) + 1
        letter = vote_sequence(i, case)[(n - 1) % 32]
        if letter is None:
            return "The findings are equivocal; I cannot tell."
        return f"Weighing the findings ({n}).\n\nThe answer is ({letter})."
    return answer


def make_scaling_runs(root: Path, tiny_model: Path) -> Path:
    """OUT/gamma: medbullets and medqa under cot_maj (one run) and cot_adaptive (another run, --model medreason)
    from a server that answers by ``VOTE_PATTERNS``; OUT/<tiny model>: medqa_cot and medqa_cot_budget (one run,
    --model medreason over hf, budgets ``BUDGETS``, 40 tokens at most)."""
    data = write_data_dir(root / "data", n=8)
    cases = cases_by_question(data)
    out = root / "out"
    metadata = json.dumps({"data_dir": str(data["root"])})
    for model, tasks in (("local-chat-completions", "_maj"), ("medreason", "_adaptive")):
        base = "base=local-chat-completions," if model == "medreason" else ""
        with fake_chat_server(patterned(cases)) as (url, _):
            run_lm_eval(["--model", model, "--apply_chat_template", "--model_args",
                         f"{base}model=gamma,base_url={url},num_concurrent=1,max_retries=1,tokenizer_backend=none",
                         "--tasks", ",".join(f"{b}_cot{tasks}" for b in SCALING_BENCHMARKS), "--metadata", metadata], out)
    run_lm_eval(["--model", "medreason", "--model_args", f"base=hf,pretrained={tiny_model},dtype=float32",
                 "--device", "cpu", "--batch_size", "16", "--apply_chat_template", "--gen_kwargs", "max_gen_toks=40",
                 "--tasks", "medqa_cot,medqa_cot_budget",
                 "--metadata", json.dumps({"data_dir": str(data["root"]), "budgets": list(BUDGETS)})], out)
    return out


CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None)


def chromium(*args: str) -> str:
    """Headless Chromium's stdout for ``args`` (no sandbox, GPU or extensions: CI containers have none)."""
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-extensions", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def page_dom(page: Path, hash_: str = "") -> str:
    """The report page's DOM after its script ran, from headless Chromium (file://, no network)."""
    text = chromium("--dump-dom", page.as_uri() + hash_)
    assert 'data-first-render-ms="' in text, "the page's script did not render the response browser"
    return text
