"""Sweeps that reach devices: `make sweep TARGETS="local pi-emulator pi@raspberrypi.local"`.

Each target is what `targets.registry.resolve_target` makes of its name: `local` (this machine), another kind
(`pi-emulator`), a device profile that names its device (`host = …` in targets/profiles/<name>.toml) or an
ssh host / ~/.ssh/config alias. After the
conversions and validations, every variant is benchmarked on every target: one variant at a time per
target (a device never times two models at once), the targets in parallel (one thread each; the work runs
on the devices). Incremental like the rest: a target's state entry (`benchmark@<target>` in
sweep-state.json) holds a key over its settings, the runner's code and what the device reported about its
python, numpy and runtimes, so an unchanged artifact on an unchanged target is not measured again.

The emulated Pi runs on this machine's cores: its timings, and this machine's while it runs, are measured
under load; the runner marks such runs as disturbed.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from mobilenet_edge.pipeline.sweep import state as state_
from mobilenet_edge.pipeline.artifacts import sha256_file
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.targets.plan import PythonInfo
from mobilenet_edge.targets.registry import parse_targets
from mobilenet_edge.targets.target import Target

__all__ = ["STATE_LOCK", "benchmark_targets", "parse_targets"]

log = logging.getLogger(__name__)

STATE_LOCK = threading.Lock()  # a variant's sweep-state.json is updated by every target's thread


def device_key(target: Target, cfg, timeout_s: float = 120) -> dict:
    """The target's benchmark key: settings, the runner's code, and what the device reported (for a python
    target its python, numpy and runtimes), probed now: a device whose runtime was upgraded is measured again."""
    info = target.probe(timeout_s)
    device = {"python": info.python, "machine": info.machine, "numpy": info.numpy, "modules": info.modules} \
        if isinstance(info, PythonInfo) else dataclasses.asdict(info)
    return state_.key({"settings": {"threads": cfg.bench_threads, "runs": cfg.bench_runs, "host": target.address,
                                    "port": target.port, "profile": target.profile.name if target.profile else None},
                       "device": device, "code": state_.code_digest("benchmark")})


def benchmark_device(target: Target, cfg, outcomes: dict, states: dict) -> dict[str, str]:
    """Every finished variant on one device, one after the other; returns variant name -> what happened
    ("unchanged", "3 timed", or "FAILED: <why>"). A variant failing here does not stop the others."""
    try:
        key = device_key(target, cfg)
    except PipelineError as exc:
        log.error("target %s: %s", target.name, exc)
        return {name: f"FAILED: {exc}" for name, o in outcomes.items() if o.ok}
    done = {}
    for name, outcome in outcomes.items():
        if not outcome.ok:
            continue
        files, reason = state_.bench_files(outcome.folder, key, states[name], target.entry, target.file)
        if not files:
            done[name] = "unchanged"
            continue
        try:
            path = target.bench(outcome.folder, threads=cfg.bench_threads, only=files)
        except PipelineError as exc:
            log.error("%s on %s: %s", name, target.name, exc)
            done[name] = f"FAILED: {exc}"
            continue
        with STATE_LOCK:
            state = states[name]
            state[target.entry] = {**key, "file_sha256": sha256_file(path),
                                   "files": state_.manifest_files(outcome.folder)}
            state_.write_state(outcome.folder, state)
        log.info("%s: benchmarked %d artifact(s) on %s (%s)", name, len(files), target.name, reason)
        done[name] = f"{len(files)} timed"
    return done


def benchmark_targets(targets: tuple[Target, ...], cfg, outcomes: dict, states: dict, local) -> None:
    """Run `local()` (this machine's serial benchmarks) and every device target at the same time; record what
    each did in outcome.steps["benchmark <target>"]."""
    devices = [t for t in targets if not t.is_local]
    with ThreadPoolExecutor(max_workers=len(devices) + 1, thread_name_prefix="target") as pool:
        futures = {t.name: pool.submit(benchmark_device, t, cfg, outcomes, states) for t in devices}
        if any(t.is_local for t in targets):
            local()
        for name, future in futures.items():
            for variant, status in future.result().items():
                outcomes[variant].steps[f"benchmark {name}"] = status if not status.startswith("FAILED") else "FAILED"
                if status.startswith("FAILED") and outcomes[variant].error is None:
                    outcomes[variant].fail(f"benchmark {name}", status.removeprefix("FAILED: "))

