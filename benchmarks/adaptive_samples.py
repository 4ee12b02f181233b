"""Samples per question: adaptive voting against a fixed 32-sample majority vote, counted at the server.

Runs the real `lm_eval` CLI on synthetic MedQA cases against a scripted OpenAI-compatible server
(tests.support.vote_server) whose k-th sampled answer to a question is the k-th of a fixed, seeded sequence,
so that every run sees the same answers:
  maj@32     ``medqa_cot_maj`` under plain local-chat-completions: 32 samples per question
  adaptive   ``medqa_cot_adaptive`` under ``--model medreason`` (base local-chat-completions), once per
             setting (threshold, round size): it stops a question once its vote is decided

The questions' answer distributions follow a strong model's regimes on MedQA: most questions answered
consistently, some consistently wrong (errors that no vote fixes), some where gold leads a strong distractor,
some split with a distractor ahead. By construction one sample is right 71% of the time (expected maj@1),
and a 32-vote fixes the medium questions only, so maj@32 lands some points higher, in the 70s-80s percent
where strong models score on MedQA, as the study's voting curves rise a few points from 1 to 32 votes.
The regimes and their shares:
  easy        55%  gold 0.95, one distractor 0.04, no answer 0.01
  wrong       10%  gold 0.05, one distractor 0.90, no answer 0.05
  medium      20%  gold 0.65, distractors 0.25 and 0.08, no answer 0.02
  hard        15%  gold 0.35, distractors 0.45 and 0.15, no answer 0.05
The issue's target: adaptive voting at most 40% of the 32 samples, at an accuracy within 1 point of maj@32.

    python -m benchmarks.adaptive_samples [--questions 300] [--settings 0.05:4,0.1:4,0.01:4,0.05:1]
"""

import argparse
import json
import logging
import random
import tempfile
from pathlib import Path

TARGET_SHARE, TARGET_POINTS, VOTES = 0.40, 1.0, 32


def regimes() -> dict:
    """name -> (answer distribution, share of the questions): the table in the module docstring."""
    from tests.support.vote_server import EASY, HARD, MEDIUM, Profile

    wrong = Profile(0.05, (0.90,))
    return {"easy": (EASY, 0.55), "wrong": (wrong, 0.10), "medium": (MEDIUM, 0.20), "hard": (HARD, 0.15)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--settings", default="0.05:4,0.1:4,0.01:4,0.05:1",
                        help="adaptive settings to compare, THRESHOLD:ROUND, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrent", type=int, default=16)
    args = parser.parse_args()
    settings = [(float(t), int(r)) for t, r in (s.split(":") for s in args.settings.split(","))]

    from lm_eval_medreason.data.loaders import load_cases
    from tests.support.lm_eval_run import read_results, run_lm_eval
    from tests.support.synthetic import medqa_rows, write_data_dir, write_jsonl
    from tests.support.vote_server import VoteScript, vote_server

    logging.getLogger("lm_eval_medreason.data.sources").setLevel(logging.ERROR)  # "differs from the pinned upstream"

    shares = regimes()
    labels = [name for name, (_, share) in shares.items() for _ in range(round(share * args.questions))]
    labels = (labels + ["easy"] * args.questions)[:args.questions]
    random.Random(args.seed).shuffle(labels)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_data_dir(tmp / "data", n=args.questions, seed=args.seed)
        # Numbered, so that no two of a few hundred vignettes share text and options (the server tells them apart).
        medqa = medqa_rows(args.questions, 4, args.seed)
        write_jsonl(data["paths"]["medqa"], [{**row, "question": f"Case {i + 1}. {row['question']}"}
                                             for i, row in enumerate(medqa)])
        cases = load_cases("medqa", {"data_dir": str(data["root"])})

        def run(label: str, wrapped: bool, task: str, **metadata):
            """One lm_eval run on a fresh server: the task's results, its logged samples, samples drawn per question."""
            script = VoteScript(cases, lambda i, case: shares[labels[i]][0], seed=args.seed)
            with vote_server(script) as url:
                backend = f"model=scripted,base_url={url},num_concurrent={args.concurrent},tokenizer_backend=none"
                model = ("medreason", f"base=local-chat-completions,{backend}") if wrapped else ("local-chat-completions",
                                                                                                 backend)
                run_lm_eval(["--model", model[0], "--model_args", model[1], "--apply_chat_template", "--tasks", task,
                             "--metadata", json.dumps({"data_dir": str(data["root"]), **metadata})], tmp / label)
            results, samples = read_results(tmp / label)
            return results["results"][task], samples[task], sum(script.sampled.values()) / len(cases)

        maj, _, maj_drawn = run("maj", False, "medqa_cot_maj")
        maj_acc = maj["maj@32,final-answer"]
        rows = []
        for threshold, round_size in settings:
            adaptive, samples, drawn = run(f"adaptive_{threshold}_{round_size}", True, "medqa_cot_adaptive",
                                           adaptive_threshold=threshold, adaptive_round=round_size)
            logged = sum(s["samples"] for s in samples) / len(samples)
            assert abs(logged - drawn) < 1e-9, f"the task logged {logged} samples per question, the server saw {drawn}"
            rows.append((threshold, round_size, drawn, adaptive["acc,final-answer"]))

    counts = {name: labels.count(name) for name in shares}
    print(f"{args.questions} synthetic MedQA questions ({', '.join(f'{n} {k}' for k, n in counts.items())}), "
          f"seed {args.seed}; samples counted at the server")
    print(f"  maj@1 {maj['maj@1,final-answer']:.3f}, maj@32 {maj_acc:.3f} "
          f"(medqa_cot_maj, {maj_drawn:.1f} samples per question)")
    print(f"  target: at most {TARGET_SHARE:.0%} of {VOTES} samples at an accuracy at most {TARGET_POINTS:g} point "
          "below maj@32")
    print("  adaptive (threshold, round)   samples/question   of 32   accuracy   vs maj@32   target")
    for threshold, round_size, drawn, acc in rows:
        points = 100 * (acc - maj_acc)
        met = drawn <= TARGET_SHARE * VOTES and points >= -TARGET_POINTS  # a loss of at most 1 point
        print(f"  {threshold:<6g} {round_size:>2}{'(default)' if (threshold, round_size) == (0.05, 4) else '':>11}"
              f"   {drawn:16.2f}   {drawn / VOTES:5.1%}   {acc:8.3f}   {points:+6.2f} pt   "
              f"{'met' if met else 'missed'}")


if __name__ == "__main__":
    main()
