"""Sweeps that reach devices: `make sweep TARGETS="local pi-emulator pi@raspberrypi.local"`.

Each target is `local` (this machine), a device profile that names its device (`host = …` in
targets/profiles/<name>.toml, e.g. `pi-emulator`) or an ssh host / ~/.ssh/config alias. After the
conversions and validations, every variant is benchmarked on every target: one variant at a time per
target (a device never times two models at once), the targets in parallel (one thread each; the work runs
on the devices). Incremental like the rest: a target's state entry (`benchmark@<target>` in
sweep-state.json) holds a key over its settings, the runner's code and what the device reported about its
python, numpy and runtimes, so an unchanged artifact on an unchanged target is not measured again.

The emulated Pi runs on this machine's cores: its timings, and this machine's while it runs, are measured
under load; the runner marks such runs as disturbed.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from mobilenet_edge.pipeline.sweep import state as state_
from mobilenet_edge.pipeline.artifacts import sha256_file
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.targets.named import SweepTarget, parse_targets

__all__ = ["STATE_LOCK", "SweepTarget", "benchmark_targets", "parse_targets"]

log = logging.getLogger(__name__)

STATE_LOCK = threading.Lock()  # a variant's sweep-state.json is updated by every target's thread


def device_key(target: SweepTarget, cfg, timeout_s: float = 120) -> dict:
    """The target's benchmark key: settings, the runner's code, and the device's python, numpy and runtimes
    (probed now: a device whose runtime was upgraded is measured again)."""
    from mobilenet_edge.targets.profiles import load_profile
    from mobilenet_edge.targets.ssh import Ssh, probe_device

    prof = load_profile(target.profile) if target.profile else None
    ssh = Ssh(target.host, port=target.port, identity=target.identity, known_hosts=target.known_hosts)
    info = probe_device(ssh, prof.python if prof else "python3", timeout_s)
    return state_.key({"settings": {"threads": cfg.bench_threads, "runs": cfg.bench_runs, "host": target.host,
                                    "port": target.port, "profile": target.profile},
                       "device": {"python": info.python, "machine": info.machine, "numpy": info.numpy,
                                  "modules": info.modules},
                       "code": state_.code_digest("benchmark")})


def benchmark_device(target: SweepTarget, cfg, outcomes: dict, states: dict) -> dict[str, str]:
    """Every finished variant on one device, one after the other; returns variant name -> what happened
    ("unchanged", "3 timed", or "FAILED: <why>"). A variant failing here does not stop the others."""
    from mobilenet_edge.targets.ssh import bench_remote

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
            path = bench_remote(outcome.folder, target.host, port=target.port, identity=target.identity,
                                known_hosts=target.known_hosts, profile=target.profile, threads=cfg.bench_threads,
                                only=files)
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


def benchmark_targets(targets: tuple[SweepTarget, ...], cfg, outcomes: dict, states: dict, local) -> None:
    """Run `local()` (this machine's serial benchmarks) and every device target at the same time; record what
    each did in outcome.steps["benchmark <target>"]."""
    devices = [t for t in targets if t.host is not None]
    with ThreadPoolExecutor(max_workers=len(devices) + 1, thread_name_prefix="target") as pool:
        futures = {t.name: pool.submit(benchmark_device, t, cfg, outcomes, states) for t in devices}
        if any(t.host is None for t in targets):
            local()
        for name, future in futures.items():
            for variant, status in future.result().items():
                outcomes[variant].steps[f"benchmark {name}"] = status if not status.startswith("FAILED") else "FAILED"
                if status.startswith("FAILED") and outcomes[variant].error is None:
                    outcomes[variant].fail(f"benchmark {name}", status.removeprefix("FAILED: "))

