"""Benchmark every artifact of a variant on this machine with the standalone runner."""
from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Collection, Sequence
from pathlib import Path

from mobilenet_edge.pipeline.artifacts import write_json
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.targets import plan
from mobilenet_edge.targets.profiles import load_profile

log = logging.getLogger(__name__)


def bench_local(variant_dir: Path, *, threads: int | Sequence[int] | None = None, runtime: str = "auto", runs: int = 100,
                min_seconds: float = 0.0, profile: str | None = None, only: Collection[str] | None = None) -> Path:
    """Run benchmarks/runner.py (with this python) on the variant's .tflite and .onnx files.

    Args:
      variant_dir: the variant folder (e.g. artifacts/fashion-mnist/mobilenet_0.25_64).
      threads: runner threads; None = the profile's, else the runner's default (every core); a sequence
        (THREADS="1 2 4") times every artifact at each count: one result per artifact and count.
      runtime: "auto" (per format, the profile's preference among what is installed) or a runner
        runtime (litert, litert-interpreter, litert-compiled, tflite-runtime, onnxruntime), which then
        runs only the artifacts of its format.
      runs, min_seconds: timed runs after the warm-up, and a minimum timed duration.
      profile: a device profile name or .toml path (threads, runtime preference, warm-up).
      only: file names to measure; the other artifacts keep their results from the existing
        benchmark-local.json (the sweep re-measures only what changed). None: every artifact.
    Returns: variant_dir/benchmark-local.json, written atomically with "target": "local".
    """
    variant_dir = Path(variant_dir)
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise PipelineError(f"expected runs >= 1, received {runs!r}")
    if min_seconds < 0:
        raise PipelineError(f"expected min_seconds >= 0, received {min_seconds!r}")
    plan.check_threads(threads)
    prof = load_profile(profile) if profile else None
    threads = threads if threads is not None else (prof.threads if prof else None)
    preference = prof.runtimes if prof else plan.DEFAULT_PREFERENCE
    warmup = prof.warmup if prof else 10
    artifacts = plan.artifacts_of(variant_dir)
    kept = _kept_results(variant_dir, artifacts, only)
    if only is not None:
        artifacts = [a for a in artifacts if a.name in set(only)]
        if not artifacts:
            raise PipelineError(f"expected {', '.join(sorted(only)) or 'a file'} in {variant_dir}, received no such artifact")
    if not plan.RUNNER.is_file():
        raise PipelineError(f"expected the runner at {plan.RUNNER}, received no such file")

    info = plan.PythonInfo.from_json(_run([sys.executable, "-c", plan.PROBE], "the python probe"), "this machine")
    runs_planned = plan.plan_runs(artifacts, info, runtime=runtime, preference=preference, python=sys.executable)
    reports = []
    for count in plan.thread_counts(threads):
        for run in runs_planned:
            log.info("benchmarking %d artifact(s) with %s on this machine%s", len(run.models), run.runtime,
                     f", {count} thread(s)" if count else "")
            argv = plan.runner_argv([str(m) for m in run.models], run.runtime, threads=count, warmup=warmup,
                                    runs=runs, min_seconds=min_seconds)
            reports.append(plan.parse_report(_run([sys.executable, str(plan.RUNNER), *argv],
                                                  f"the runner ({run.runtime})"), "this machine"))
    extra = {"profile": prof.name} if prof else {}
    merged = plan.merge_reports(reports, "local", folder=variant_dir, **extra)
    if only is not None:
        merged["results"] = sorted(kept + merged["results"], key=lambda r: r["model"])
    path = write_json(variant_dir / "benchmark-local.json", merged)
    log.info("wrote %s", path)
    return path


def _kept_results(variant_dir: Path, artifacts: list[Path], only: Collection[str] | None) -> list[dict]:
    """With `only`: the earlier results of the artifacts that are not re-measured and still exist."""
    return plan.kept_results(variant_dir / "benchmark-local.json", artifacts, only)


def _run(argv: list[str], what: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
        reason = lines[-1] if lines else f"exit status {proc.returncode}"
        raise PipelineError(f"expected {what} to succeed on this machine, received {reason!r}")
    return proc.stdout
