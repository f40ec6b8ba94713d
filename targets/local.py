"""This machine as a target (`local`): the standalone runner with this python (or another local one)."""
from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path

from mobilenet_edge.pipeline.artifacts import write_json
from mobilenet_edge.pipeline.config import DeviceProfile
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.targets import plan
from mobilenet_edge.targets.predict import Predictions, collect, parse_predictions, predict_argv
from mobilenet_edge.targets.profiles import load_profile
from mobilenet_edge.targets.target import Given, Kind, Target, runner_failure, signal_of

log = logging.getLogger(__name__)

HERE = "this machine"


class Local(Kind):
    name = "local"
    example = "local"

    def make(self, name: str, given: Given) -> Target:
        if given.address:
            raise PipelineError(f"expected `local` alone (this machine), received {name!r}")
        return Target(name, self, "local", python=given.python or sys.executable, profile=given.profile)

    def probe(self, target: Target, timeout_s: float = 120) -> plan.PythonInfo:
        return probe_local(target.python)

    def bench(self, target: Target, variant_dir: Path, *, threads=None, runtime: str = "auto", runs: int | None = None,
              only=None, timeout_s: float = 600, dump_outputs: Path | None = None) -> Path:
        return bench_local(variant_dir, threads=threads, runtime=runtime, runs=100 if runs is None else runs,
                           profile=target.profile, only=only, python=target.python)

    def predict(self, target: Target, models: list[Path], inputs: Path, *, threads: int | None = None,
                runtime: str = "auto", timeout_s: float = 1800) -> Predictions:
        return predict_local(models, inputs, threads=threads, runtime=runtime, preference=target.runtimes,
                             python=target.python)


KIND = Local()


def bench_local(variant_dir: Path, *, threads: int | Sequence[int] | None = None, runtime: str = "auto", runs: int = 100,
                min_seconds: float = 0.0, profile: str | DeviceProfile | None = None,
                only: Collection[str] | None = None, python: str = sys.executable) -> Path:
    """Run benchmarks/runner.py (with this python) on the variant's .tflite and .onnx files.

    Args:
      variant_dir: the variant folder (e.g. artifacts/fashion-mnist/mobilenet_0.25_64).
      threads: runner threads; None = the profile's, else the runner's default (every core); a sequence
        (THREADS="1 2 4") times every artifact at each count: one result per artifact and count.
      runtime: "auto" (per format, the profile's preference among what is installed) or a runner
        runtime (litert, litert-interpreter, litert-compiled, tflite-runtime, onnxruntime), which then
        runs only the artifacts of its format.
      runs, min_seconds: timed runs after the warm-up, and a minimum timed duration.
      profile: a device profile (name, .toml path or loaded): threads, runtime preference, warm-up.
      only: file names to measure; the other artifacts keep their results from the existing
        benchmark-local.json (the sweep re-measures only what changed). None: every artifact.
      python: the python the runner runs with (default: this one).
    Returns: variant_dir/benchmark-local.json, written atomically with "target": "local".
    Raises: PipelineError for bad input or a missing runtime (with the pip command), ToolError when the
      runner crashes.
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
    kept = plan.kept_results(variant_dir / "benchmark-local.json", artifacts, only)
    if only is not None:
        artifacts = [a for a in artifacts if a.name in set(only)]
        if not artifacts:
            raise PipelineError(f"expected {', '.join(sorted(only)) or 'a file'} in {variant_dir}, received no such artifact")
    if not plan.RUNNER.is_file():
        raise PipelineError(f"expected the runner at {plan.RUNNER}, received no such file")

    info = probe_local(python)
    runs_planned = plan.plan_runs(artifacts, info, runtime=runtime, preference=preference, python=python)
    reports = []
    for count in plan.thread_counts(threads):
        for run in runs_planned:
            log.info("benchmarking %d artifact(s) with %s on this machine%s", len(run.models), run.runtime,
                     f", {count} thread(s)" if count else "")
            argv = plan.runner_argv([str(m) for m in run.models], run.runtime, threads=count, warmup=warmup,
                                    runs=runs, min_seconds=min_seconds)
            reports.append(plan.parse_report(run_here([python, str(plan.RUNNER), *argv],
                                                      f"the runner ({run.runtime})"), HERE))
    extra = {"profile": prof.name} if prof else {}
    merged = plan.merge_reports(reports, "local", folder=variant_dir, **extra)
    if only is not None:
        merged["results"] = sorted(kept + merged["results"], key=lambda r: r["model"])
    path = write_json(variant_dir / "benchmark-local.json", merged)
    log.info("wrote %s", path)
    return path


def predict_local(models: list[Path], inputs: Path, *, threads: int | None = None, runtime: str = "auto",
                  preference: tuple[str, ...] = plan.DEFAULT_PREFERENCE, python: str = sys.executable) -> Predictions:
    """The runner with this python over `models`, each fed the chunks `inputs`/inputs.json names."""
    info = probe_local(python)
    with tempfile.TemporaryDirectory(prefix="predict-local-") as tmp:
        work = Path(tmp) / "inputs"
        shutil.copytree(inputs, work)  # the runner writes outputs/ beside its inputs; keep `inputs` as given
        reports, runs = [], plan.plan_runs(models, info, runtime=runtime, preference=preference, python=python,
                                                 also=False)  # one output per file
        for run in runs:
            argv = [python, str(plan.RUNNER), *predict_argv([str(m) for m in run.models], run.runtime, str(work), threads)]
            reports.append(parse_predictions(run_here(argv, f"the runner --predict ({run.runtime})"), HERE))
        return collect(reports, work / "outputs", runs, HERE)


def probe_local(python: str) -> plan.PythonInfo:
    """What `python` on this machine has: numpy and the runtimes."""
    if shutil.which(python) is None:
        raise PipelineError(f"expected a python command on this machine, received {python!r} (no such command)")
    proc = subprocess.run([python, "-c", plan.PROBE], capture_output=True, text=True)
    if proc.returncode != 0 and signal_of(proc.returncode) is None:  # a python that cannot run it: bad input
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        raise PipelineError(f"expected the python probe to succeed with {python} on this machine, received "
                            f"{lines[-1].strip() if lines else f'exit status {proc.returncode}'!r}")
    if proc.returncode != 0:  # numpy crashing as it loads
        raise runner_failure(proc.returncode, proc.stderr, "the python probe", HERE)
    return plan.PythonInfo.from_json(proc.stdout, HERE)


def run_here(argv: list[str], what: str) -> str:
    """`argv`'s stdout; PipelineError for the runner's own refusal, ToolError when it crashed (runner_failure)."""
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise runner_failure(proc.returncode, proc.stderr, what, HERE)
    return proc.stdout
