"""The sweep: every variant of ARCHS × ALPHAS × RESOLUTIONS in FORMATS, built, converted, validated,
benchmarked and reported — in parallel, incrementally, on worker processes or on Ray.

Steps (numbered in `run_sweep`):
  1. plan: the grid, each variant's content keys and what is stale (pipeline.sweep.state); nothing runs yet
  2. convert + validate, in parallel: per variant the recipe (`export_variant`) for the stale formats only,
     then `validate` for the artifacts it has not measured — jobs on worker processes or Ray tasks, the
     largest variants first; a failing job fails its variant, the others go on
  3. benchmark, one variant at a time on this machine after step 2, so that no sweep work competes with the
     latency measurement (only artifacts whose sha256 changed are measured again; pipeline.sweep.bench)
  4. record and report: OUT/sweep.json (grid, settings, which variants failed and why; pipeline.sweep.outcome)
     and OUT/report.*, rewritten only when one of their inputs changed

State lives beside the artifacts (`<variant>/sweep-state.json`, written after each finished step), so an
interrupted sweep resumes with the first unfinished step and a second sweep over the same inputs does nothing.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from mobilenet_edge.calibration.tasks import resolve_task
from mobilenet_edge.pipeline.artifacts import sha256_file
from mobilenet_edge.pipeline.clean import claim_output
from mobilenet_edge.pipeline.config import FORMATS, PAPER_RESOLUTIONS, ExportConfig, RecipeConfig, SweepConfig, Variant
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.manifest import entry_format
from mobilenet_edge.pipeline.recipe import ensure_writable, needs_calibration, variant_dir
from mobilenet_edge.pipeline.sweep import state as state_
from mobilenet_edge.pipeline.sweep.bench import benchmark_local
from mobilenet_edge.pipeline.sweep.executors import make_executor, usable_cores
from mobilenet_edge.pipeline.sweep.grid import default_resolutions, grid, parse_values
from mobilenet_edge.pipeline.sweep.jobs import Job, JobResult
from mobilenet_edge.pipeline.sweep.mcu import MCU, run_mcu_targets
from mobilenet_edge.pipeline.sweep.outcome import STEPS, Outcome, SweepResult, gate_failures, log_status, write_record
from mobilenet_edge.pipeline.sweep.state import (Planner, manifest_files, reusable_validation, stale_formats,
                                                 validation_reason)
from mobilenet_edge.pipeline.sweep.targets import benchmark_targets, parse_targets
from mobilenet_edge.pipeline.validate import VALIDATION

__all__ = ["PAPER_RESOLUTIONS", "SweepConfig", "SweepResult", "Outcome", "default_resolutions", "grid",
           "parse_values", "plan_workers", "run_sweep"]

log = logging.getLogger(__name__)

LOCK = ".sweep.lock"


# ------------------------------------------------------------------------------------------------- the sweep

def plan_workers(cfg: SweepConfig, jobs: int) -> tuple[int, int]:
    """(workers, threads per worker). Default: a worker per core (up to one per job), the cores shared out:
    much of a conversion is serial, so several single-threaded conversions at once beat one conversion on every
    core (README "Sweeps": x1.61 on 2 cores)."""
    cores = usable_cores()
    if cfg.workers and cfg.threads:
        return cfg.workers, cfg.threads
    if cfg.threads:
        return max(1, min(cores // cfg.threads, jobs)), cfg.threads
    workers = cfg.workers or max(1, min(cores, jobs))
    return workers, max(1, cores // workers)


def run_sweep(cfg: SweepConfig, progress: bool = True) -> SweepResult:
    """Run the grid (see the module doc); returns each variant's outcome and the report's path.

    Raises PipelineError for bad input before any work, or when another sweep is writing to the same OUT;
    a variant that fails is reported in its Outcome.
    """
    cfg = _absolute(cfg)
    grid(cfg)  # bad input fails before OUT is touched
    claim_output(cfg.out)
    ensure_writable(cfg.out)
    with _lock(cfg.out):
        return _run(cfg, progress)


def _absolute(cfg: SweepConfig) -> SweepConfig:
    """Every path as an absolute one: a Ray worker does not run in the driver's working directory."""
    def absolute(path):
        return str(Path(path).expanduser().resolve()) if path else path

    weights = cfg.weights if cfg.weights in (None, "imagenet", "random", "reference") else absolute(cfg.weights)
    task = absolute(cfg.task) if cfg.task not in ("imagenet", "fashion-mnist") and Path(cfg.task).is_dir() else cfg.task
    return replace(cfg, out=Path(absolute(cfg.out)), weights=weights, task=task,
                   quant=replace(cfg.quant, calib_dir=absolute(cfg.quant.calib_dir)),
                   validation=replace(cfg.validation, eval_dir=absolute(cfg.validation.eval_dir)))


@contextmanager
def _lock(out: Path):
    """One sweep at a time per OUT: two would both redo the same stale steps and race on the state files."""
    import fcntl

    with open(out / LOCK, "a") as handle:  # "a": an existing lock file is not even touched
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PipelineError(f"expected no other sweep writing to OUT={out}, received one that holds "
                                f"{out / LOCK}; wait for it or use another OUT") from None
        yield


@dataclass
class _Plan:
    """Step 1's result: what each variant needs, and the jobs that do it."""

    outcomes: dict
    states: dict
    convert_keys: dict
    validate_key: dict
    bench_key: dict
    jobs: list
    workers: int
    threads: int


def _plan(cfg: SweepConfig, task, variants: list[Variant]) -> _Plan:
    """Keys and staleness of every variant; the convert and validate jobs, sized to the cores."""
    if cfg.quant.calib_dir and needs_calibration(cfg.formats):
        from mobilenet_edge.calibration.images import find_images

        find_images(cfg.quant.calib_dir)  # a missing or empty CALIB fails now
    planner = Planner(cfg, task)
    if needs_calibration(cfg.formats):
        planner.calibration(variants[0])  # TASK=imagenet without CALIB fails here, before any work
    outcomes = {v.name: Outcome(v, variant_dir(cfg.out, task, v)) for v in variants}
    states = {v.name: state_.read_state(outcomes[v.name].folder) for v in variants}
    validate_key, bench_key = planner.validate_key(), planner.bench_key()
    convert_keys, to_convert, to_validate = {}, {}, []
    for v in variants:
        outcome = outcomes[v.name]
        try:
            convert_keys[v.name] = planner.convert_keys(v)
        except PipelineError as exc:  # e.g. no reference checkpoint for this alpha: this variant fails
            outcome.fail("convert", str(exc))
            continue
        stale = stale_formats(outcome.folder, convert_keys[v.name], states[v.name])
        if stale:
            to_convert[v.name] = stale
            log.info("%s: convert %s", v.name, "; ".join(f"{f} ({r})" for f, r in stale.items()))
            continue
        outcome.steps["convert"] = "unchanged"
        reason = validation_reason(outcome.folder, validate_key, states[v.name])
        if reason:
            to_validate.append(v)
            log.info("%s: validate (%s)", v.name, reason)
        else:
            outcome.steps["validate"] = "unchanged"
    workers, threads = plan_workers(cfg, max(1, len(to_convert) + len(to_validate)))
    jobs = [Job("convert", _recipe(cfg, outcomes[name].variant, [f for f in FORMATS if f in stale]), threads)
            for name, stale in to_convert.items()]
    jobs += [_validate_job(cfg, v, threads, validate_key, states[v.name]) for v in to_validate]
    return _Plan(outcomes, states, convert_keys, validate_key, bench_key, jobs, workers if jobs else 0, threads)


def _run(cfg: SweepConfig, progress: bool) -> SweepResult:
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    start = time.perf_counter()
    # 1. plan
    task, variants = grid(cfg)
    plan = _plan(cfg, task, variants)
    outcomes, states, workers, threads = plan.outcomes, plan.states, plan.workers, plan.threads
    phases = {"plan": time.perf_counter() - start}
    steps = _steps(cfg)
    done_units = sum(len(steps) if not o.ok else sum(str(o.steps.get(s)).startswith("unchanged") for s in steps)
                     for o in outcomes.values())
    busy = None
    with logging_redirect_tqdm(), tqdm(total=len(variants) * len(steps), initial=done_units, desc="sweep",
                                       unit="step", disable=not progress, dynamic_ncols=True) as bar:
        # 2. convert + validate, in parallel
        t0 = time.perf_counter()
        if plan.jobs:
            executor = make_executor(cfg.executor, workers, threads, cfg.ray_address, cfg.ray_resources)
            workers = executor.workers
            log.info("%d job(s) on %s: %d worker(s) × %d thread(s)", len(plan.jobs), executor.name, workers, threads)
            try:
                _drive(executor, plan, cfg, bar)
            except KeyboardInterrupt:
                executor.interrupt()  # the workers stop their jobs too; finished steps are recorded, so it resumes
                raise
            finally:
                executor.close(cancel=True)
        phases["convert+validate"] = time.perf_counter() - t0
        # 3. benchmark, one variant at a time
        t0 = time.perf_counter()
        if cfg.bench:
            def local():
                nonlocal busy
                busy = benchmark_local(cfg, outcomes, states, plan.bench_key, bar)

            # a microcontroller is not timed: its stage runs below (pipeline.sweep.mcu)
            benchmark_targets(tuple(t for t in parse_targets(cfg.targets) if t.kind.name != MCU), cfg, outcomes,
                              states, local)
        phases["benchmark"] = time.perf_counter() - t0
        if MCU in cfg.targets:  # TARGETS=mcu: after the benchmarks, one variant at a time (pipeline.sweep.mcu)
            t0 = time.perf_counter()
            run_mcu_targets(cfg, outcomes, bar)
            phases["mcu"] = time.perf_counter() - t0

    # 4. record and report
    t0 = time.perf_counter()
    for outcome in outcomes.values():
        if outcome.ok:
            outcome.gate_failures = gate_failures(outcome.folder)
        log_status(outcome)
    write_record(cfg, outcomes.values(), busy)
    report, written = _report(cfg.out)
    phases["report"] = time.perf_counter() - t0
    return SweepResult(tuple(outcomes.values()), report, written, round(time.perf_counter() - start, 1),
                       cfg.executor, workers, threads, {k: round(v, 1) for k, v in phases.items()})


def _recipe(cfg: SweepConfig, variant: Variant, formats) -> RecipeConfig:
    return RecipeConfig(variant=variant, export=ExportConfig(formats=tuple(formats), opset=cfg.opset, out=cfg.out),
                        quant=cfg.quant, bench_threads=None,
                        # BUDGET judges its trials on the sweep's held-out images (LIMIT/EVAL), not on all of them.
                        validation=cfg.validation if cfg.quant.budget is not None else None)


def _validate_job(cfg: SweepConfig, variant: Variant, threads: int, validate_key: dict, state: dict) -> Job:
    folder = variant_dir(cfg.out, resolve_task(cfg.task), variant)
    recipe = replace(_recipe(cfg, variant, cfg.formats), validation=replace(cfg.validation, threads=threads))
    return Job("validate", recipe, threads, reuse=reusable_validation(folder, validate_key, state))


def _steps(cfg: SweepConfig) -> tuple[str, ...]:
    return (STEPS if cfg.bench else STEPS[:2]) + ((MCU,) if MCU in cfg.targets else ())


def _size(job: Job) -> float:
    v = job.recipe.variant
    return v.alpha ** 2 * v.resolution ** 2  # Mult-Adds grow as alpha² · side²: start the largest first


def _drive(executor, plan: _Plan, cfg: SweepConfig, bar) -> None:
    """Keep the executor busy: validations first (they finish variants), then the largest conversions."""
    outcomes, states, convert_keys, validate_key = plan.outcomes, plan.states, plan.convert_keys, plan.validate_key
    queue = deque(sorted(plan.jobs, key=lambda j: (j.step != "validate", -_size(j))))
    running: dict = {}
    while queue or running:
        while queue and len(running) < executor.capacity:
            job = queue.popleft()
            running[executor.submit(job)] = job
        bar.set_postfix_str(", ".join(sorted({f"{j.step} {j.variant}" for j in running.values()})), refresh=True)
        for handle in executor.wait(list(running)):
            job = running.pop(handle)
            result = executor.result(handle, job)
            if result.crashed and job.attempt == 1:
                log.warning("%s: the worker running %s died; running it again on its own", job.variant, job.step)
                queue.appendleft(replace(job, attempt=2))
                continue
            outcome = outcomes[job.variant]
            for text in result.warnings:
                log.warning("%s: %s", job.variant, text)
            if result.ok and job.step == "convert":
                _record_conversion(outcome, states[job.variant], convert_keys[job.variant], job, result)
            elif result.ok:
                _record_validation(outcome, states[job.variant], validate_key, result)
            else:
                outcome.fail(job.step, result.error)
            if not outcome.ok:  # this step and the ones after it will not run
                steps = _steps(cfg)
                bar.update(len(steps) - steps.index(job.step))
                continue
            bar.update(1)
            if job.step == "convert":
                queue.appendleft(_validate_job(cfg, outcome.variant, job.threads, validate_key, states[job.variant]))


def _record_conversion(outcome: Outcome, state: dict, keys: dict, job: Job, result: JobResult) -> None:
    files: dict[str, dict] = {fmt: {} for fmt in job.recipe.export.formats}
    for entry in result.artifacts:
        if entry_format(entry) in files:
            files[entry_format(entry)][entry["file"]] = entry["sha256"]
    missing = [f for f, names in files.items() if not names] + \
              [n for names in files.values() for n in names if not (outcome.folder / n).is_file()]
    if missing:  # files the job reported but that never reached OUT
        outcome.fail("convert", f"expected the converted files in {outcome.folder}, received none for "
                                f"{', '.join(missing)}")
        return
    converted = state.setdefault("convert", {})
    for fmt, names in files.items():
        converted[fmt] = {**keys[fmt], "files": names}
    state_.write_state(outcome.folder, state)
    outcome.steps["convert"] = f"{' '.join(files)} ({result.seconds:.0f} s)"
    log.info("%s: converted %s in %.0f s", outcome.variant.name, ", ".join(files), result.seconds)


def _record_validation(outcome: Outcome, state: dict, key: dict, result: JobResult) -> None:
    path = outcome.folder / VALIDATION
    state["validate"] = {**key, "file_sha256": sha256_file(path), "artifacts": manifest_files(outcome.folder)}
    state_.write_state(outcome.folder, state)
    kept = f", {result.kept} kept" if result.kept else ""
    outcome.steps["validate"] = f"{result.measured} measured{kept} ({result.seconds:.0f} s)"
    log.info("%s: validated %d artifact(s)%s in %.0f s%s", outcome.variant.name, result.measured, kept,
             result.seconds, "" if result.passed else " — a gate FAILS")


def _report(out: Path) -> tuple[Path | None, bool]:
    from mobilenet_edge.pipeline.report import report_is_current, write_report

    if not list(out.glob("*/*/manifest.json")):
        return None, False
    if report_is_current(out):
        log.info("report: unchanged (%s)", out / "report.html")
        return out / "report.html", False
    return write_report(out).html, True
