"""Time `medreason report` on 10 full-size majority-vote runs; target: under 30 s.

Writes 10 result folders shaped like `lm_eval --output_path OUT --log_samples` output of
`medreason_{cot,longmonolog}_maj` (5 models x 2 strategies): per folder a results JSON
and one samples JSONL per task, for JAMA (646 questions), Medbullets (308) and MedQA
(1,273), each question with 32 raw responses of about 1,000 tokens in `resps`, their
scored JSON in `filtered_resps`, the chat prompt in `arguments` and the per-question
maj@k / pass@k (lm_eval_medreason.evaluation.voting) as lm-eval logs them. That is about 3 GB,
like real runs. Then runs the console script on all 10 folders 3 times (the files are
in the page cache after being written) and prints the median, the output files and
their sizes. The data are synthetic because only the reading and the statistics are
timed; `--sizes medqa=1273` gives the 1,273-question-per-folder variant.

    python -m benchmarks.report_time                 # --workdir /tmp/medreason-report-bench --repeats 3
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from lm_eval_medreason.evaluation.voting import VOTE_KS, vote_metrics

SIZES = {"jama": 646, "medbullets": 308, "medqa": 1273}
SAMPLES = 32
MODELS = ["Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-32B-Instruct", "meta-llama/Llama-3.1-8B-Instruct",
          "Qwen/Qwen2.5-72B-Instruct", "Qwen/Qwen2.5-7B-Instruct+runs/longmonolog-sft/adapter"]
STRATEGIES = ["cot", "longmonolog"]
_WORDS = ("the patient presents with progressive dyspnea and bilateral pitting edema; considering heart failure "
          "versus nephrotic syndrome, albumin is low but urine protein is only mildly elevated so wait, let me "
          "reconsider — the jugular venous pressure is raised, which argues for a cardiac cause. Option (B) is "
          "tempting, but \"acute\" onset does not fit; hepatitis B serology was negative. 患者 μ ≥ 5 mg/dL").split()


def response(rng: random.Random, letter: str) -> str:
    """A LongMonolog-style response of about 1,000 tokens (~4,500 characters) with newlines, quotes, non-ASCII."""
    paragraphs = []
    for _ in range(rng.randint(14, 22)):
        paragraphs.append(" ".join(rng.choice(_WORDS) for _ in range(rng.randint(35, 45))))
    return "<think>\n" + "\n\n".join(paragraphs) + f"\n</think>\n\nThe answer is ({letter})."


@lru_cache(maxsize=None)
def _metrics(gold: int, others: tuple[int, ...], unanswered: int) -> dict:
    votes = ["A"] * gold + [l for l, c in zip("BCDE", others) for _ in range(c)] + [None] * unanswered
    return vote_metrics(votes, "A")


def sample_line(rng: random.Random, benchmark: str, i: int, pool: list[str], skill: float) -> tuple[str, dict]:
    """One samples_*.jsonl line as lm-eval writes it for a 32-sample task, and its metric values."""
    options = {letter: f"Option {letter} text for question {i}" for letter in "ABCD"}
    gold = rng.choice("ABCD")
    question = f"A {rng.randint(20, 80)}-year-old presents with case {i}. " + " ".join(rng.choice(_WORDS) for _ in range(120))
    votes = [gold if rng.random() < skill else rng.choice([l for l in "ABCD" if l != gold]) for _ in range(SAMPLES)]
    votes = [None if rng.random() < 0.02 else v for v in votes]
    resps = [pool[rng.randrange(len(pool))][:-3] + f"{v or '?'})." for v in votes]
    counts = Counter(v for v in votes if v is not None)
    gold_votes = counts.pop(gold, 0)
    metrics = _metrics(gold_votes, tuple(sorted(counts.values())), votes.count(None))
    tokens = [rng.randint(850, 1250) for _ in votes]
    meta = {"step": "step1" if i % 3 else "step2&3"} if benchmark == "medqa" else (
        {"link": f"https://jamanetwork.com/x/{i}", "field": ["Cardiology", "Neurology", ""][i % 3]}
        if benchmark == "jama" else {"link": f"https://medbullets.com/{i}"})
    prompt = json.dumps([{"role": "user", "content": "Answer the following question.\n\n" + question}])
    values = {**metrics, "output_tokens": sum(tokens) / len(tokens), "no_answer": votes.count(None) / len(votes)}
    sample = {
        "doc_id": i,
        "doc": {"id": str(1000 + i) if benchmark == "medqa" else meta["link"], "question": question, "options": options,
                "answer_idx": gold, "answer": options[gold], "meta": meta, "token_encoding": "cl100k_base"},
        "target": gold,
        "arguments": {"gen_args_0": {"arg_0": [prompt], "arg_1": {"until": [], "max_gen_toks": 8192, "do_sample": True,
                                                                   "temperature": 0.7, "top_p": 0.95}}},
        "resps": [resps],
        "filtered_resps": [[json.dumps({"choice": v, "output_tokens": t}) for v, t in zip(votes, tokens)]],
        "filter": "final-answer",
        "metrics": [m for k in VOTE_KS for m in (f"maj@{k}", f"pass@{k}")] + ["output_tokens", "no_answer"],
        "doc_hash": f"{rng.getrandbits(256):064x}", "prompt_hash": f"{rng.getrandbits(256):064x}",
        "target_hash": f"{rng.getrandbits(256):064x}",
        **values,
    }
    return json.dumps(sample, ensure_ascii=False) + "\n", values


def write_run(folder: Path, model: str, strategy: str, sizes: dict, seed: int, stamp: str) -> None:
    """OUT/<sanitized model>/results_<stamp>.json + samples_<task>_<stamp>.jsonl, as lm-eval writes them."""
    rng = random.Random(seed)
    sub = folder / model.replace("/", "__")
    sub.mkdir(parents=True)
    pool = [response(rng, "X") for _ in range(256)]
    skill = rng.uniform(0.45, 0.8)
    results, tasks = {}, []
    for benchmark, n in sizes.items():
        task = f"{benchmark}_{strategy}_maj"
        tasks.append(task)
        sums = Counter()
        with (sub / f"samples_{task}_{stamp}.jsonl").open("w", encoding="utf-8") as handle:
            for i in range(n):
                line, values = sample_line(rng, benchmark, i, pool, skill)
                handle.write(line)
                sums.update(values)
        results[task] = {"name": task, "alias": task, "sample_len": n,
                         **{f"{k},final-answer": v / n for k, v in sums.items()}}
    group = f"medreason_{strategy}_maj"
    results[group] = {"alias": group, "name": group, "sample_len": sum(sizes.values())}
    content = {
        "results": results, "groups": {group: results[group]}, "group_subtasks": {group: tasks},
        "configs": {t: {"task": t, "repeats": SAMPLES} for t in tasks}, "versions": {t: 1.0 for t in tasks},
        "n-shot": {t: 0 for t in tasks}, "higher_is_better": {},
        "n-samples": {t: {"original": n, "effective": n} for t, n in zip(tasks, sizes.values())},
        "config": {"model": "vllm", "model_args": _model_args(model), "batch_size": "auto", "limit": None},
        "lm_eval_version": "0.4.13", "model_name": model, "model_name_sanitized": model.replace("/", "__"),
    }
    (sub / f"results_{stamp}.json").write_text(json.dumps(content, indent=2), encoding="utf-8")


def _model_args(model: str) -> dict:
    base, _, adapter = model.partition("+")
    return {"pretrained": base, **({"peft": adapter} if adapter else {}), "tensor_parallel_size": 4}


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/medreason-report-bench"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default=",".join(f"{k}={v}" for k, v in SIZES.items()),
                        help="questions per benchmark in every folder (default: the study's sizes)")
    parser.add_argument("--keep", action="store_true", help="keep the generated folders (about 3 GB)")
    args = parser.parse_args()
    sizes = {k: int(v) for k, v in (part.split("=") for part in args.sizes.split(","))}

    shutil.rmtree(args.workdir, ignore_errors=True)
    folders = []
    start = time.perf_counter()
    base = datetime(2026, 11, 22, 8, 0, 0)
    for r, (model, strategy) in enumerate((m, s) for m in MODELS for s in STRATEGIES):
        folder = args.workdir / f"run{r:02d}"
        stamp = (base + timedelta(minutes=r)).isoformat(timespec="microseconds").replace(":", "-")
        write_run(folder, model, strategy, sizes, seed=r, stamp=stamp)
        folders.append(folder)
    print(f"wrote {len(folders)} folders ({sum(sizes.values())} questions x {SAMPLES} responses each, "
          f"{size_of(args.workdir) / 1e9:.2f} GB) in {time.perf_counter() - start:.0f} s")

    medreason = str(Path(sys.executable).with_name("medreason"))
    output = args.workdir / "report"
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        subprocess.run([medreason, "report", *map(str, folders), "--output", str(output)], check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    print(f"medreason report, {len(folders)} folders: median {statistics.median(times):.1f} s "
          f"(runs: {', '.join(f'{t:.1f}' for t in times)}; target < 30 s)")
    for path in sorted(output.iterdir()):
        print(f"  {path.name:40s} {path.stat().st_size:>10,d} bytes")
    if not args.keep:
        shutil.rmtree(args.workdir)


if __name__ == "__main__":
    main()
