"""Scoring throughput: answer extraction plus token counting over long responses.

Builds N realistic LongMonolog-style responses (about 1,000-1,500 tokens each,
self-corrections, some inside ``<think>`` blocks, restated options, traps such
as "vitamin A"), then times, side by side on the same texts:
  floor   tiktoken's own encode of every response (``encode_ordinary``)
  ours    ``hooks.score_response`` (extract_choice + count_tokens)
and prints the medians over repeats and their ratio. Target: ratio at most 1.5.

    python -m benchmarks.scoring_throughput [--responses 10000] [--repeats 5]
"""

import argparse
import random
import statistics
import time

from lm_eval_medreason.evaluation.hooks import score_response
from lm_eval_medreason.tokens import default_encoding, get_encoding

OPTIONS = {
    "A": "Pulmonary embolism",
    "B": "Aortic dissection (AD)",
    "C": "Acute myocardial infarction",
    "D": "Tension pneumothorax",
    "E": "Vitamin B12 deficiency",
}
SENTENCES = [
    "The patient is a 67-year-old man with sudden tearing chest pain radiating to the back.",
    "His blood pressure differs by 30 mmHg between the arms, which is a striking finding.",
    "Hmm, wait, I should not anchor on the first hypothesis; let me reconsider the ECG.",
    "The troponin is only mildly elevated, which could reflect demand ischemia rather than a type 1 infarction.",
    "Could this be hepatitis B or vitamin A toxicity? No, nothing in the history supports that.",
    "A widened mediastinum on the chest radiograph points toward a type A dissection.",
    "But actually, the D-dimer would be elevated in both dissection and pulmonary embolism.",
    "Let me go through the options again: A. Pulmonary embolism, B. Aortic dissection, C. Acute MI, D. Tension pneumothorax.",
    "Breath sounds are symmetric and the trachea is midline, so tension pneumothorax is unlikely.",
    "I initially thought the answer is C, but the pulse deficit makes that less likely.",
    "Step 3: weigh each option against the findings before committing to a conclusion.",
]


def make_response(rng: random.Random) -> str:
    body = " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(40, 60)))
    letter = rng.choice("ABCDE")
    ending = rng.choice(
        [f"The answer is ({letter}).", f"**Final Answer: {letter}. {OPTIONS[letter]}**", f"\\boxed{{{letter}}}", "答案是" + letter]
    )
    if rng.random() < 0.3:
        return f"<think>\n{body}\n</think>\n\nConclusion: {ending}"
    return f"{body}\n\nConclusion: {ending}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(0)
    responses = [make_response(rng) for _ in range(args.responses)]
    doc = {"options": OPTIONS, "token_encoding": default_encoding()}
    encoding = get_encoding(default_encoding())
    tokens = sum(len(encoding.encode_ordinary(r)) for r in responses)  # warm-up, and the size
    floor, ours = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for r in responses:
            encoding.encode_ordinary(r)
        floor.append(time.perf_counter() - start)
        start = time.perf_counter()
        for r in responses:
            score_response(r, doc)
        ours.append(time.perf_counter() - start)
    f, o = statistics.median(floor), statistics.median(ours)
    print(f"{args.responses} responses, {tokens / args.responses:.0f} tokens each on average ({default_encoding()})")
    print(f"  tiktoken encode only (floor):   {f:7.3f} s  ({args.responses / f:8.0f} responses/s)")
    print(f"  extract_choice + count_tokens:  {o:7.3f} s  ({args.responses / o:8.0f} responses/s)")
    print(f"  ratio: {o / f:.2f}  (target <= 1.5), medians of {args.repeats} repeats")


if __name__ == "__main__":
    main()
