"""Does the runner under-report this machine? Its p50 side by side with the official tools', at 1 and 2 threads.

References:
  .tflite  `python -m ai_edge_litert.tools.benchmark_litert_model` (LiteRT's own benchmark, CompiledModel API);
           its "Inference (median)" line, printed to 0.01 ms.
  .onnx    a plain onnxruntime session loop (REFERENCE_ORT_LOOP below), what a user would write.

Fairness: every measurement is a fresh process with the same threads, warm-up and run counts (the runner's
untimed first inference counts as one more warm-up run for the reference); runner and reference alternate, in
ABBA order over the rounds, so drifting background load hits both; each side's p50 is the median over rounds,
and a pair outside the tolerance gets extra rounds (up to --max-rounds) before it is judged. A ratio
(runner / reference) outside 1 +- tolerance fails, unless the difference is within the reference's print
resolution; any failure makes the exit code 1, bad input 2.

    python benchmarks/reference_check.py artifacts/fashion-mnist/mobilenet_0.25_128/ [--threads 1 2] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

RUNNER = Path(__file__).resolve().with_name("runner.py")
TFLITE_TOOL = "ai_edge_litert.tools.benchmark_litert_model"
MEDIAN_LINE = re.compile(r"Inference \(median\):\s*([0-9.]+)\s*ms")
REFERENCE_ORT_LOOP = """
import sys, time, numpy as np, onnxruntime as ort
path, threads, warmup, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
options = ort.SessionOptions()
options.intra_op_num_threads = threads
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
feeds = {}
for i in session.get_inputs():
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
    dtype = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8}[i.type]
    feeds[i.name] = np.random.default_rng(0).uniform(-1, 1, shape).astype(dtype)
for _ in range(warmup):
    session.run(None, feeds)
times = []
for _ in range(runs):
    t0 = time.perf_counter()
    session.run(None, feeds)
    times.append((time.perf_counter() - t0) * 1e3)
print(float(np.median(times)))
"""


class CheckError(Exception):
    """A one-line `expected ..., received ...` message."""


@dataclass
class Comparison:
    """One model at one thread count: per-round p50s of both sides and the verdict."""

    model: str
    threads: int
    reference: str
    resolution_ms: float
    tolerance: float
    runner_runtimes: list = field(default_factory=list)  # which path the runner chose, per round
    runner_ms: list = field(default_factory=list)
    reference_ms: list = field(default_factory=list)

    @property
    def runner_p50(self) -> float:
        return statistics.median(self.runner_ms)

    @property
    def reference_p50(self) -> float:
        return statistics.median(self.reference_ms)

    @property
    def ratio(self) -> float:
        return self.runner_p50 / self.reference_p50

    @property
    def passed(self) -> bool:
        close = abs(self.runner_p50 - self.reference_p50) <= self.resolution_ms
        return abs(self.ratio - 1) <= self.tolerance or close


def _run(cmd: list, timeout: float) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        raise CheckError(f"expected `{' '.join(cmd[:4])} ...` to succeed, received exit {proc.returncode}: {last}")
    return proc.stdout


def runner_p50(python: str, model: Path, threads: int, warmup: int, runs: int, timeout: float) -> tuple[float, str]:
    out = _run([python, str(RUNNER), str(model), "--threads", str(threads), "--warmup", str(warmup),
                "--runs", str(runs)], timeout)
    result = json.loads(out)["results"][0]
    return result["latency_ms"]["p50"], result["runtime"]


def reference_p50(python: str, model: Path, threads: int, warmup: int, runs: int, timeout: float) -> float:
    if model.suffix == ".onnx":
        return float(_run([python, "-c", REFERENCE_ORT_LOOP, str(model), str(threads), str(warmup + 1), str(runs)],
                          timeout))
    out = _run([python, "-m", TFLITE_TOOL, f"--model={model}", f"--num_threads={threads}",
                f"--warmup_runs={warmup + 1}", f"--num_runs={runs}"], timeout)
    match = MEDIAN_LINE.search(out)
    if not match:
        raise CheckError(f"expected an 'Inference (median)' line from {TFLITE_TOOL}, received {out[-200:]!r}")
    return float(match.group(1))


def compare(models: list, threads: tuple = (1, 2), warmup: int = 10, runs: int = 100, rounds: int = 3,
            max_rounds: int = 6, tolerance: float = 0.05, python: str = sys.executable, timeout: float = 600,
            progress=None) -> list:
    """Measure every model at every thread count, runner and reference alternating; return Comparisons.

    A pair outside the tolerance after `rounds` gets more rounds, up to `max_rounds`: background load hits one
    process at a time, and more rounds let the medians of both sides settle (the same rounds count for both).
    """
    comparisons = []
    for model in models:
        for n in threads:
            tflite = model.suffix == ".tflite"
            c = Comparison(model.name, n, "benchmark_litert_model" if tflite else "onnxruntime loop",
                           0.01 if tflite else 0.0, tolerance)
            r = 0
            while r < rounds or (not c.passed and r < max_rounds):
                order = ("runner", "reference") if r % 2 == 0 else ("reference", "runner")
                for side in order:
                    if side == "runner":
                        p50, runtime = runner_p50(python, model, n, warmup, runs, timeout)
                        c.runner_ms.append(p50)
                        c.runner_runtimes.append(runtime)
                    else:
                        c.reference_ms.append(reference_p50(python, model, n, warmup, runs, timeout))
                r += 1
                if progress:
                    progress(f"{model.name} threads={n} round {r}: runner {c.runner_ms[-1]:.3f} ms, "
                             f"reference {c.reference_ms[-1]:.3f} ms")
            comparisons.append(c)
    return comparisons


def table(comparisons: list) -> str:
    rows = [("model", "thr", "runner runtime", "runner p50", "reference", "ref p50", "ratio", "rounds", "verdict")]
    for c in comparisons:
        verdict = "ok" if abs(c.ratio - 1) <= c.tolerance else ("ok (within print resolution)" if c.passed else
                                                                  "SLOWER" if c.ratio > 1 else "FASTER (suspicious)")
        runtimes = "/".join(sorted(set(c.runner_runtimes)))
        rows.append((c.model, str(c.threads), runtimes, f"{c.runner_p50:.3f}", c.reference,
                     f"{c.reference_p50:.3f}", f"{c.ratio:.3f}", str(len(c.runner_ms)), verdict))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(lines + ["p50 in ms, median over rounds; ratio = runner / reference, ok within "
                              f"{comparisons[0].tolerance:.0%}" if comparisons else "no models"])


def find_models(paths: list) -> list:
    models = []
    for p in map(Path, paths):
        if p.is_dir():
            models += sorted(q for q in p.iterdir() if q.suffix in (".tflite", ".onnx"))
        elif p.is_file() and p.suffix in (".tflite", ".onnx"):
            models.append(p)
        else:
            raise CheckError(f"expected a variant folder or a .tflite/.onnx file, received {str(p)!r}")
    if not models:
        raise CheckError(f"expected .tflite or .onnx files, received none in {paths}")
    return models


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="variant folder(s) (every .tflite/.onnx inside) or model files")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="alternating repetitions per model and thread count")
    parser.add_argument("--max-rounds", type=int, default=6, help="more rounds for a pair outside the tolerance")
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--python", default=sys.executable, help="interpreter with numpy and the runtimes")
    parser.add_argument("--quiet", action="store_true", help="no per-round progress on stderr")
    args = parser.parse_args(argv)
    try:
        if min(args.rounds, args.runs, *args.threads) < 1 or args.warmup < 0:
            raise CheckError(f"expected --rounds, --runs, --threads >= 1 and --warmup >= 0, received rounds="
                             f"{args.rounds}, runs={args.runs}, threads={args.threads}, warmup={args.warmup}")
        models = find_models(args.paths)
        progress = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
        if load > cores / 2:
            print(f"note: load average {load:.1f} on {cores} cores: other processes compete for the CPU, so "
                  "multi-thread ratios will be noisy", file=sys.stderr)
        comparisons = compare(models, tuple(args.threads), args.warmup, args.runs, args.rounds,
                              max(args.max_rounds, args.rounds), args.tolerance, args.python, progress=progress)
    except (CheckError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(comparisons))
    failed = [c for c in comparisons if not c.passed]
    if failed:
        print(f"{len(failed)} of {len(comparisons)} ratios off by more than {args.tolerance:.0%}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
