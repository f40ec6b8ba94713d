"""Step 3 of the sweep on this machine: time what changed, one variant after the other, after every conversion
and validation has finished (the device targets run beside it: pipeline.sweep.targets)."""
from __future__ import annotations

import logging
import os
import time

from mobilenet_edge.pipeline.artifacts import sha256_file
from mobilenet_edge.pipeline.config import SweepConfig
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.sweep import state as state_
from mobilenet_edge.pipeline.sweep.executors import BUSY, busy_cores
from mobilenet_edge.pipeline.sweep.state import bench_files, manifest_files
from mobilenet_edge.pipeline.sweep.targets import STATE_LOCK

log = logging.getLogger(__name__)


def benchmark_local(cfg: SweepConfig, outcomes: dict, states: dict, key: dict, bar) -> float | None:
    """Time what changed, one variant after the other; returns the cores other programs kept busy just before
    (None: nothing timed, or not measurable)."""
    from mobilenet_edge.targets.local import bench_local

    todo = []
    for name, outcome in outcomes.items():
        if not outcome.ok:
            continue
        files, reason = bench_files(outcome.folder, key, states[name])
        if files:
            todo.append((outcome, files, reason))
        else:
            outcome.steps["benchmark"] = "unchanged"
            bar.update(1)
    if not todo:
        return None
    busy = busy_cores()
    if busy is not None and busy > BUSY:
        log.warning("other programs kept %.2f of %d cores busy before the benchmarks: latencies will be inflated",
                    busy, os.cpu_count() or 1)
    for outcome, files, reason in todo:
        bar.set_postfix_str(f"benchmark {outcome.variant.name}", refresh=True)
        t0 = time.perf_counter()
        try:
            path = bench_local(outcome.folder, threads=cfg.bench_threads, runs=cfg.bench_runs, only=files)
        except PipelineError as exc:
            outcome.fail("benchmark", str(exc))
            bar.update(1)
            continue
        with STATE_LOCK:  # the device targets' threads update the same file
            state = states[outcome.variant.name]
            state["benchmark"] = {**key, "file_sha256": sha256_file(path), "files": manifest_files(outcome.folder)}
            state_.write_state(outcome.folder, state)
        outcome.steps["benchmark"] = f"{len(files)} timed ({time.perf_counter() - t0:.0f} s)"
        log.info("%s: benchmarked %d artifact(s) (%s)", outcome.variant.name, len(files), reason)
        bar.update(1)
    return busy
