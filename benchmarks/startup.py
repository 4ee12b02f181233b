"""Python start-up cost of the lm-eval autoload hook when lm-eval is not imported.

Builds this package's wheel, installs it (without dependencies) into a fresh venv,
then times ``python -c pass`` with ``lm_eval_medreason.pth`` active and with it
renamed away, interleaved, and prints the medians and their difference.
Target: difference under 5 ms.

    python -m benchmarks.startup [--runs 200]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_venv(root: Path) -> tuple[Path, Path]:
    """A fresh venv with only this package's wheel installed; returns (python, the .pth file)."""
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(root), str(REPO)],
        check=True,
    )
    wheel = next(root.glob("lm_eval_medreason-*.whl"))
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    return python, Path(site) / "lm_eval_medreason.pth"


def time_start(python: Path) -> float:
    start = time.perf_counter()
    subprocess.run([str(python), "-c", "pass"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="start-ups per variant (interleaved)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        python, pth = make_venv(Path(tmp))
        off = pth.with_suffix(".off")
        with_hook, without_hook = [], []
        for _ in range(args.runs):
            with_hook.append(time_start(python))
            pth.rename(off)
            without_hook.append(time_start(python))
            off.rename(pth)
        importtime = subprocess.run(
            [str(python), "-X", "importtime", "-c", "pass"], capture_output=True, text=True
        ).stderr
    ours = [line for line in importtime.splitlines() if "lm_eval_medreason" in line]
    a, b = statistics.median(with_hook), statistics.median(without_hook)
    print(f"python -c pass, median of {args.runs} interleaved runs")
    print(f"  with lm_eval_medreason.pth:    {a * 1000:7.2f} ms")
    print(f"  without it:                    {b * 1000:7.2f} ms")
    print(f"  difference:                    {(a - b) * 1000:7.2f} ms  (target < 5 ms)")
    print("  -X importtime of the hook (self us | cumulative us | module):")
    for line in ours:
        print("   ", line.split(":", 1)[1].strip())


if __name__ == "__main__":
    main()
