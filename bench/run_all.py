"""Run every benchmark of ptz_calibration (what ``make bench`` runs) and print a summary.

Each benchmark compares against a baseline measured in the same run; results are written as
JSON under ``bench/results/``. Arguments after ``--`` go to the latency benchmark, e.g.
``make bench BENCH_ARGS="-- --duration 5 --camera-counts 1,4"``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(script: str, extra: list[str]) -> int:
    print(f"\n=== {script} {' '.join(extra)}", flush=True)
    start = time.monotonic()
    rc = subprocess.call([sys.executable, str(HERE / script), *extra])
    print(f"=== {script}: exit {rc} after {time.monotonic() - start:.1f} s", flush=True)
    return rc


def main(argv: list[str]) -> int:
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    codes = [run("bench_model.py", []), run("bench_calibration.py", []), run("bench_latency.py", extra)]
    codes.append(run("bench_stereo.py", []))
    return max(codes)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
