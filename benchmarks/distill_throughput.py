"""Throughput of `medreason distill` against a local teacher with a fixed latency, as a ratio to the ideal.

A scripted OpenAI-compatible server (tests/support/fake_teacher.py, its own process) answers every
request after a fixed latency (default 200 ms) with a ~1,000-token correct trace. The whole
pipeline runs (Jinja prompt, openai.AsyncOpenAI over its aiohttp transport, selection with
extraction and token counting, JSONL writes with fsync) at a given concurrency (default 64). The
ideal is concurrency / latency requests per second (320 req/s); the target is a ratio of at
least 0.9.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--processes", type=int, default=1, help="helper processes for the HTTP calls (default 1: none)")
    parser.add_argument("--nagle", action="store_true", help="the server leaves Nagle's algorithm on, as Python's "
                        "http.server does by default (how this benchmark ran before: replies wait for delayed ACKs)")
    parser.add_argument("--http-client", choices=["aiohttp", "httpx"], default="aiohttp",
                        help="the openai SDK's HTTP transport (medreason distill --http-client)")
    args = parser.parse_args()

    from lm_eval_medreason.distillation import pipeline as distill
    from lm_eval_medreason.distillation.teacher import Teacher

    server = subprocess.Popen([sys.executable, "-m", "tests.support.fake_teacher", "--latency", str(args.latency),
                               *(["--nagle"] if args.nagle else [])],
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            cases = Path(tmp) / "cases.jsonl"
            with cases.open("w") as handle:
                for i in range(args.cases):
                    options = {"A": f"Remedy alpha {i}", "B": "Remedy beta", "C": "Remedy gamma", "D": "Remedy delta"}
                    handle.write(json.dumps({"id": f"c{i}", "question": f"[case c{i}] Patient {i} reports symptoms. Which?",
                                             "options": options, "answer_idx": "A", "meta": {}}) + "\n")
            options = distill.Options(input=str(cases), output=Path(tmp) / "out.jsonl", contamination=False,
                                      progress=False, fsync=not args.no_fsync)
            teacher = Teacher("teacher", base_url=url, concurrency=args.concurrency, max_retries=0, timeout=30,
                              max_tokens=4096, processes=args.processes, http_client=args.http_client)
            # warm up (imports, tokenizer, Jinja) on a separate output
            distill.run(distill.Options(input=str(cases), output=Path(tmp) / "warm.jsonl", contamination=False,
                                        progress=False, limit=64), teacher)
            started = time.perf_counter()
            stats = distill.run(options, teacher)
            elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()
    assert stats["kept"] == args.cases, stats
    ideal = args.concurrency / args.latency
    rate = args.cases / elapsed
    print(f"{args.cases} cases at concurrency {args.concurrency}, latency {args.latency * 1000:.0f} ms: "
          f"{elapsed:.2f} s, {rate:.1f} req/s against the ideal {ideal:.0f} req/s: ratio {rate / ideal:.3f} "
          f"(target >= 0.9); {args.processes} process(es) for the HTTP calls; mean trace {stats['mean_tokens']:.0f} tokens")


if __name__ == "__main__":
    main()
