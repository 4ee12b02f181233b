"""Page weight and time to first render of `medreason report`'s index.html; target: first render under 2 s.

Writes the 10 synthetic majority-vote runs of `benchmarks/report_time.py` (5 models x 2 strategies, JAMA 646 +
Medbullets 308 + MedQA 1,273 questions, 32 responses of about 1,000 tokens each), runs `medreason report` once,
then opens report/index.html from file:// in headless Chromium 3 times with `--dump-dom` and reads the time the
page itself records when its first page of responses is on screen (`data-first-render-ms`:
performance.now() since navigation start) and when the whole page has loaded (`data-loaded-ms`), and the wall time of the whole Chromium call (start-up included).

    python -m benchmarks.report_page                 # --workdir /tmp/medreason-page-bench --repeats 3
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from benchmarks.report_time import MODELS, SIZES, STRATEGIES, write_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/medreason-page-bench"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default=",".join(f"{k}={v}" for k, v in SIZES.items()))
    parser.add_argument("--browser", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    sizes = {k: int(v) for k, v in (part.split("=") for part in args.sizes.split(","))}

    shutil.rmtree(args.workdir, ignore_errors=True)
    base = datetime(2026, 11, 22, 8, 0, 0)
    folders = []
    for r, (model, strategy) in enumerate((m, s) for m in MODELS for s in STRATEGIES):
        folder = args.workdir / f"run{r:02d}"
        write_run(folder, model, strategy, sizes, seed=r,
                  stamp=(base + timedelta(minutes=r)).isoformat(timespec="microseconds").replace(":", "-"))
        folders.append(folder)
    output = args.workdir / "report"
    start = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("medreason")), "report", *map(str, folders), "--output",
                    str(output)], check=True, stdout=subprocess.DEVNULL)
    print(f"medreason report (with the page): {time.perf_counter() - start:.1f} s")
    page = output / "index.html"
    print(f"page weight: {page.stat().st_size / 1e6:.1f} MB ({len(folders)} runs x {sum(sizes.values())} questions)")
    first, loaded, wall = [], [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        dom = subprocess.run([args.browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                             check=True, capture_output=True, text=True, timeout=300).stdout
        wall.append(time.perf_counter() - start)
        first.append(int(re.search(r'data-first-render-ms="(\d+)"', dom)[1]) / 1000)
        loaded.append(int(re.search(r'data-loaded-ms="(\d+)"', dom)[1]) / 1000)
    print(f"first render (page's own timing): median {statistics.median(first):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in first)}; target < 2 s)")
    print(f"whole page loaded (the load event): median {statistics.median(loaded):.2f} s")
    print(f"chromium --dump-dom wall time (start-up and writing out the {page.stat().st_size / 1e6:.0f} MB DOM included): median {statistics.median(wall):.2f} s")
    shutil.rmtree(args.workdir)


if __name__ == "__main__":
    main()
