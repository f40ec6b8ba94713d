#!/usr/bin/env python3
"""Standalone latency benchmark for .tflite and .onnx models: copy this file and the runtimes/ folder beside it
to a device and run it.

Needs only numpy and one runtime: ai-edge-litert, tflite-runtime (old Pi images, numpy<2) or onnxruntime (the
members of runtimes/, one module each). No TensorFlow, no project install; Python 3.9+, numpy 1.x or 2.x.

    python runner.py mobilenet_0.75_224_int8.tflite mobilenet_0.75_224_fp32.onnx --threads 4 --table

stdout: one JSON document {"host": {...}, "results": [...]} (benchmark-<target>.json in docs/architecture.md,
minus "target"); --table adds a short human table on stderr. With --predict DIR it times nothing: it runs
fixed inputs shipped as .npy chunks through each model and saves the raw outputs (see predict_report). A missing or corrupt model, or a runtime that is
missing or cannot load the model, gives one line `error: expected ..., received ...` on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import glob
import importlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

import numpy as np

try:  # imported as a member of the installed package
    from . import runtimes
    from .runtimes._common import RunnerError, installed, ms_since, native_output_silenced, one_line
except ImportError:  # run as a script beside its runtimes/ folder (python runner.py ... on a device)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # also when loaded from its path by a test
    import runtimes
    from runtimes._common import RunnerError, installed, ms_since, native_output_silenced, one_line

RUNTIMES = ("auto", *runtimes.names())
ARM_CORES = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0b": "Cortex-A76", "0xd0d": "Cortex-A77"}


# --- inputs: realistic, seeded, identical on every platform --------------------------------------------------------

def smooth_image(rng, shape) -> np.ndarray:
    """A random low-frequency image plus fine texture in [-1, 1] (the preprocessing contract's range).

    Built from rng.random() with + - * / only, so x86 and ARM produce the same bits for the same seed.
    """
    if len(shape) != 4:
        return rng.random(shape) * 2 - 1
    channels_last = shape[3] <= 4 or shape[1] > 4
    n, h, w, c = shape if channels_last else (shape[0], shape[2], shape[3], shape[1])
    coarse = rng.random((n, 5, 5, c))
    ys, xs = np.arange(h) * (4.0 / max(h - 1, 1)), np.arange(w) * (4.0 / max(w - 1, 1))
    y0, x0 = np.minimum(ys.astype(np.int64), 3), np.minimum(xs.astype(np.int64), 3)
    fy, fx = (ys - y0)[None, :, None, None], (xs - x0)[None, None, :, None]
    rows0, rows1 = coarse[:, y0], coarse[:, y0 + 1]
    top = rows0[:, :, x0] * (1 - fx) + rows0[:, :, x0 + 1] * fx
    bottom = rows1[:, :, x0] * (1 - fx) + rows1[:, :, x0 + 1] * fx
    image = np.clip((top * (1 - fy) + bottom * fy) * 2 - 1 + (rng.random((n, h, w, c)) - 0.5) * 0.2, -1.0, 1.0)
    return image if channels_last else image.transpose(0, 3, 1, 2)


def make_inputs(specs, seed: int) -> list:
    """One array per input in its own dtype; integer inputs go through the tensor's scale and zero point."""
    rng, arrays = np.random.default_rng(seed), []
    for spec in specs:
        x, dtype = smooth_image(rng, spec["shape"]), spec["dtype"]
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            if spec.get("scale"):
                x = np.round(x / spec["scale"] + spec["zero_point"])
            else:  # no quantization parameters: spread the image over the integer range
                x = np.round((x + 1) / 2 * (float(info.max) - info.min) + info.min)
            x = np.clip(x, info.min, info.max)
        arrays.append(np.ascontiguousarray(x.astype(dtype)))
    return arrays


# --- host, memory and thermal state --------------------------------------------------------------------------------

def read_text(path: str):
    try:
        with open(path) as f:
            return f.read().replace("\x00", "").strip()
    except OSError:
        return None


def cpu_model():
    fields = {}
    for line in (read_text("/proc/cpuinfo") or "").splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    board = fields.get("Model") or read_text("/proc/device-tree/model")  # e.g. "Raspberry Pi 4 Model B Rev 1.4"
    core = ARM_CORES.get(fields.get("CPU part", "").lower())
    parts = [p for p in (board, core, fields.get("model name"), fields.get("Hardware")) if p]
    return " / ".join(parts) or platform.processor() or None


def host_info() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for dist in (m.PIP for m in runtimes.members()):
        with contextlib.suppress(PackageNotFoundError):
            versions[dist] = version(dist)
    pretty = re.search(r'^PRETTY_NAME="?([^"\n]*)', read_text("/etc/os-release") or "", re.M)
    flags = vcgencmd_throttled()
    return {"machine": platform.machine(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "os": f"{pretty.group(1)} ({platform.system()} {platform.release()})" if pretty else platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__, "runtimes": versions,
            "governor": read_text("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
            "throttled": hex(flags) if flags is not None else None}


def vcgencmd_throttled():
    """Raspberry Pi firmware throttling flags (`vcgencmd get_throttled`) as an int; None without vcgencmd."""
    out, exe = "", shutil.which("vcgencmd")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=5).stdout if exe else ""
    match = re.search(r"throttled=(0x[0-9a-fA-F]+)", out)
    return int(match.group(1), 16) if match else None


def thermal_state() -> dict:
    raw = read_text("/sys/class/thermal/thermal_zone0/temp")
    counts = [read_text(p) for p in glob.glob("/sys/devices/system/cpu/cpu*/thermal_throttle/core_throttle_count")]
    return {"temp_c": round(int(raw) / 1000, 1) if raw and raw.lstrip("-").isdigit() else None,
            "flags": vcgencmd_throttled(),
            "x86_throttles": sum(int(c) for c in counts if c and c.isdigit()) if counts else None}


def thermal_summary(before: dict, after: dict) -> dict:
    """Temperatures around the run; throttled is None where the machine offers no way to tell."""
    throttled = None
    if after["flags"] is not None:
        # vcgencmd bits 0-3: under-voltage, capped, throttled, soft temperature limit *now*;
        # bits 16-19: the same *has occurred since boot*, so a bit that appeared during the run counts too.
        throttled = bool(after["flags"] & 0xF or (after["flags"] & ~(before["flags"] or 0)) & 0xF0000)
    elif after["x86_throttles"] is not None and before["x86_throttles"] is not None:
        throttled = after["x86_throttles"] > before["x86_throttles"]
    return {"temp_before_c": before["temp_c"], "temp_after_c": after["temp_c"], "throttled": throttled}


def reset_peak_rss():
    """Linux resets VmHWM when 5 is written to clear_refs, so a model's peak is not an earlier model's.

    Memory that earlier models of the same run left behind (allocator pools, loaded libraries) still counts:
    for memory figures that compare artifacts exactly, run one model per invocation.
    """
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_rss_mb():
    hwm = re.search(r"VmHWM:\s*(\d+) kB", read_text("/proc/self/status") or "")
    if hwm:
        return round(int(hwm.group(1)) / 1024, 1)
    import resource  # elsewhere: the process's peak since it started (KiB on Linux, bytes on macOS)

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2 ** 20 if sys.platform == "darwin" else 1024), 1)


# --- measuring -----------------------------------------------------------------------------------------------------

def time_runs(run, runs: int, min_seconds: float = 0.0) -> np.ndarray:
    """Latencies in ms of `run()`, until both `runs` runs and `min_seconds` seconds are done."""
    clock, times, gc_enabled = time.perf_counter, [], gc.isenabled()
    gc.disable()  # a garbage-collection pause is not the model's latency
    try:
        start = clock()
        while len(times) < runs or clock() - start < min_seconds:
            t0 = clock()
            run()
            times.append(clock() - t0)
    finally:
        if gc_enabled:
            gc.enable()
    return np.array(times) * 1e3


# --- statistics: p50 with a 95 % confidence interval, timing until it is tight, disturbed runs -------------------

def p50_ci(ms, confidence: float = 0.95, resamples: int = 1000, seed: int = 0) -> tuple:
    """Percentile-bootstrap interval of the median of `ms`; seeded, so the same samples give the same interval."""
    x, rng = np.asarray(ms, dtype=np.float64), np.random.default_rng(seed)
    if len(x) < 2:
        return float(x[0]), float(x[0])
    medians, block = np.empty(resamples), max(1, min(resamples, 2_000_000 // len(x)))  # bounded memory on a Pi
    for start in range(0, resamples, block):
        count = min(block, resamples - start)
        medians[start:start + count] = np.median(x[rng.integers(0, len(x), (count, len(x)))], axis=1)
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(medians, [tail, 100 - tail])
    return float(lo), float(hi)


def ci_half_width(ms, interval) -> float:
    """The interval's larger distance from the p50, relative to the p50 (0.02 = within +-2 %)."""
    p50 = float(np.median(ms))
    return max(p50 - interval[0], interval[1] - p50) / p50 if p50 > 0 else float("inf")


def time_batch(run, runs: int, deadline: float) -> list:
    """Latencies in ms of up to `runs` calls of `run()`, stopping early at `deadline` (perf_counter)."""
    clock, times, gc_enabled = time.perf_counter, [], gc.isenabled()
    gc.disable()
    try:
        while len(times) < runs and clock() < deadline:
            t0 = clock()
            run()
            times.append((clock() - t0) * 1e3)
    finally:
        if gc_enabled:
            gc.enable()
    return times


def time_until_stable(run, first: np.ndarray, ci_target: float, max_seconds: float, started: float) -> tuple:
    """Keep timing after the `first` runs (batches as large as what was timed so far) until the p50's 95 %
    interval is within +-ci_target, or until max_seconds since `started`. Returns (ms, interval, stop) with
    stop "ci" (tight), "time-limit" (not tight in time) or "runs" (ci_target 0: the asked runs only)."""
    ms = list(first)
    interval = p50_ci(ms)
    if ci_target <= 0:
        return np.array(ms), interval, "runs"
    while ci_half_width(ms, interval) > ci_target:
        if time.perf_counter() - started >= max_seconds:
            return np.array(ms), interval, "time-limit"
        ms += time_batch(run, len(ms), started + max_seconds)
        interval = p50_ci(ms)
    return np.array(ms), interval, "ci"


def cpu_times() -> dict:
    """Busy clock ticks of the whole machine (/proc/stat), this process's CPU seconds and the time."""
    own = os.times()  # times(2), every thread; qemu-user fakes /proc/self/stat but passes this through
    return {"stat": read_text("/proc/stat"), "self_s": own.user + own.system, "clock": time.perf_counter()}


def other_cores(before: dict, after: dict, hz: float = 0) -> float | None:
    """Cores that other processes kept busy between two cpu_times(): machine busy minus this process's own
    CPU time, per second. None where /proc/stat is missing (macOS)."""
    def busy(stat):
        fields = [int(v) for v in stat.splitlines()[0].split()[1:]]
        return sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # all but idle and iowait

    if not (before.get("stat") and after.get("stat")):
        return None
    seconds = after["clock"] - before["clock"]
    hz = hz or os.sysconf("SC_CLK_TCK")
    other = (busy(after["stat"]) - busy(before["stat"])) / hz - (after["self_s"] - before["self_s"])
    return round(max(other, 0.0) / seconds, 3) if seconds > 0 else None


def disturbed(other: float | None, throttled, busy_limit: float) -> list:
    """Why a timed run does not show the model alone: other processes on the CPU, or throttling."""
    reasons = []
    if other is not None and other > busy_limit:
        reasons.append(f"other processes used {other:.2f} cores")
    if throttled:
        reasons.append("the device throttled")
    return reasons


def measure(backend, args) -> tuple:
    """Time `backend.run` until the p50 is tight (see time_until_stable); a disturbed attempt is repeated after
    a cool-down, up to --retries times. Returns (ms, fields for the result)."""
    attempts = []
    for attempt in range(args.retries + 1):
        if attempt:
            time.sleep(args.cooldown)
        before, usage = thermal_state(), cpu_times()
        started = time.perf_counter()
        first = time_runs(backend.run, args.runs, args.min_seconds)
        ms, interval, stop = time_until_stable(backend.run, first, args.ci_target, args.max_seconds, started)
        other, thermal = other_cores(usage, cpu_times()), thermal_summary(before, thermal_state())
        reasons = disturbed(other, thermal["throttled"], args.busy_limit)
        attempts.append({"runs": len(ms), "other_cores": other, "throttled": thermal["throttled"],
                         "disturbed": reasons})
        if not reasons:
            break
    return ms, {"p50_ci95_ms": [round(interval[0], 4), round(interval[1], 4)],
                "ci_half_width": round(ci_half_width(ms, interval), 4), "stop": stop,
                "disturbed": bool(attempts[-1]["disturbed"]), "attempts": attempts}


def resolve_runtime(path: str, requested: str) -> str:
    """The runtime for `path`: `auto` picks the first installed member that runs its container (runtimes.MEMBERS)."""
    name, container = os.path.basename(path), os.path.splitext(path)[1].lower()[1:]
    if container not in runtimes.containers():
        suffixes = " or ".join(f".{c}" for c in runtimes.containers())
        raise RunnerError(f"expected a {suffixes} model, received {path!r}")
    candidates = runtimes.names_for(container)
    if requested != "auto":
        if runtimes.container_of(requested) != container:
            fitting = [n for n in runtimes.names() if runtimes.container_of(n) == container]
            raise RunnerError(f"expected --runtime auto or a .{container} runtime ({', '.join(fitting)}) for {name}, "
                              f"received --runtime {requested}")
        return requested
    for runtime in candidates:
        if installed(runtimes.module_of(runtime).MODULE):
            return runtime
    if len(candidates) == 1:
        return candidates[0]  # loading names the pip fix
    first = runtimes.module_of(candidates[0])
    raise RunnerError(f"expected {' or '.join(runtimes.module_of(c).PIP for c in candidates)} to run {name}, "
                      f"received none installed; fix: {first.INSTALL}")


def this_device() -> dict:
    """This python as the probe describes a device (machine, numpy, CPU features)."""
    from_probe = getattr(this_device, "cached", None)
    if from_probe is None:
        from_probe = this_device.cached = runtimes._probe.probe(())
    return from_probe


def load_backend(runtime: str, path: str, threads: int, context=None):
    """Load `path` with one concrete runtime name (see runtimes/__init__.py for the backend's fields)."""
    module = runtimes.module_of(runtime)
    why = runtimes.incompatible(runtime, this_device()) if installed(module.MODULE) else None
    if why:
        raise RunnerError(f"expected {module.PIP} to be importable on this python, "
                          f"{why.format(python=os.path.basename(sys.executable) or 'python')}")
    try:
        return module.load(runtime, path, threads, context=context)
    except RunnerError:
        raise
    except Exception as exc:
        raise RunnerError(f"expected a model that {runtime} can load, received {os.path.basename(path)} "
                          f"({one_line(exc)})") from None


def trial(seed: int):
    """The interleaved timing a runtime's `choose` hook compares its paths with: {name: backend} -> {name: p50}."""
    def p50s(candidates: dict) -> dict:
        times = {name: [] for name in candidates}
        for backend in candidates.values():
            backend.feed(make_inputs(backend.inputs, seed))
            time_runs(backend.run, 3)
        for _ in range(6):  # short turns, so load that comes and goes hits both paths
            for name, backend in candidates.items():
                times[name].extend(time_runs(backend.run, 3))
        return {name: float(np.median(t)) for name, t in times.items()}
    return p50s


def concrete_runtime(path: str, runtime: str, threads: int, seed: int, notes: list) -> tuple:
    """(runtime name to load, context): a runtime's `prepare` and `choose` hooks, when it has them."""
    module = runtimes.module_of(runtime)
    prepare, choose = getattr(module, "prepare", None), getattr(module, "choose", None)
    context = prepare(runtime, path) if prepare else None
    if choose:
        runtime = choose(runtime, path, threads, context, trial(seed), notes)
    return runtime, context


def benchmark(path: str, args, notes: list) -> dict:
    """Load, run once, warm up and time one model; then, if asked, dump its output on the seeded input."""
    runtime, context = concrete_runtime(path, resolve_runtime(path, args.runtime), args.threads, args.seed, notes)
    gc.collect()
    reset_peak_rss()
    before = thermal_state()
    backend = load_backend(runtime, path, args.threads, context)
    inputs = make_inputs(backend.inputs, args.seed)
    try:
        backend.feed(inputs)
        start = time.perf_counter()
        backend.run()
        first_ms = ms_since(start)
        time_runs(backend.run, args.warmup)
        ms, timing = measure(backend, args)
        peak, after = peak_rss_mb(), thermal_state()
        if args.dump_outputs:
            inputs = make_inputs(backend.inputs, args.seed)  # a fresh generator: depends on the seed only
            backend.feed(inputs)
            backend.run()
            output = np.array(backend.output())
    except Exception as exc:
        raise RunnerError(f"expected {os.path.basename(path)} to run with {runtime}, "
                          f"received {one_line(exc)}") from None
    if args.dump_outputs:  # raw tensors in their own dtype, to compare ARM with x86 outputs of the same artifact
        stem = os.path.join(args.dump_outputs, os.path.basename(path))
        try:
            np.save(stem + ".input.npy", inputs[0])
            np.save(stem + ".output.npy", output)
        except OSError as exc:
            raise RunnerError(f"expected a writable --dump-outputs folder, received {one_line(exc)}") from None
    latency = dict(zip(("p50", "p90", "p99"), np.percentile(ms, [50, 90, 99])), mean=ms.mean(), min=ms.min(),
                   max=ms.max(), std=ms.std(ddof=1) if len(ms) > 1 else 0.0)
    return {"model": os.path.basename(path), "bytes": os.path.getsize(path), "runtime": runtime,
            "runtime_version": runtimes.module_of(runtime).version(), "threads": args.threads,
            "delegate": backend.delegate, "fast_path": backend.fast_path, "input_dtype": inputs[0].dtype.name, "init_ms": round(backend.init_ms, 3),
            "first_inference_ms": round(first_ms, 3), "runs": len(ms),
            "latency_ms": {k: round(float(latency[k]), 4) for k in ("p50", "p90", "p99", "mean", "std", "min", "max")},
            "peak_rss_mb": peak, "thermal": thermal_summary(before, after), **timing}


# --- on-device validation: fixed inputs in, raw outputs out (no timing) ------------------------------------------

PREDICT_PLAN = "inputs.json"  # in the --predict folder: {"<model file name>": ["<chunk>.npy", ...]}


def predict_runtime(runtime: str) -> str:
    """`litert` trials two paths for speed; outputs need no trial: its classic Interpreter (what validation uses)."""
    return "litert-interpreter" if runtime == "litert" else runtime


def predict_outputs(backend, chunks) -> np.ndarray:
    """Every image of every chunk through `backend` one at a time (the models have batch 1): raw outputs."""
    outputs = []
    for chunk in chunks:
        for image in chunk:
            backend.feed([np.ascontiguousarray(image[None])])
            backend.run()
            outputs.append(np.array(backend.output()).reshape(-1))
    return np.stack(outputs)


def predict_model(path: str, args, folder: str, plan: dict) -> dict:
    """Run the chunks that `plan` names for this model; save <folder>/outputs/<model>.npy in its own dtype."""
    name, runtime = os.path.basename(path), predict_runtime(resolve_runtime(path, args.runtime))
    if name not in plan:
        raise RunnerError(f"expected {name} in {PREDICT_PLAN}, received only {sorted(plan)}")
    try:
        chunks = [np.load(os.path.join(folder, os.path.basename(c))) for c in plan[name]]
    except (OSError, ValueError) as exc:
        raise RunnerError(f"expected the .npy input chunks of {name}, received {one_line(exc)}") from None
    backend = load_backend(runtime, path, args.threads)
    start = time.perf_counter()
    try:
        output = predict_outputs(backend, chunks)
    except Exception as exc:
        raise RunnerError(f"expected {name} to run its inputs with {runtime}, received {one_line(exc)}") from None
    seconds = time.perf_counter() - start
    os.makedirs(os.path.join(folder, "outputs"), exist_ok=True)
    np.save(os.path.join(folder, "outputs", name + ".npy"), output)
    return {"model": name, "runtime": runtime, "runtime_version": runtimes.module_of(runtime).version(),
            "threads": args.threads, "delegate": backend.delegate, "images": int(len(output)),
            "output_dtype": output.dtype.name, "seconds": round(seconds, 3)}


def predict_report(args) -> dict:
    """--predict: {"host": ..., "predictions": [...]}; outputs under <DIR>/outputs/, nothing else written."""
    try:
        with open(os.path.join(args.predict, PREDICT_PLAN)) as f:
            plan = json.load(f)
    except (OSError, ValueError) as exc:
        raise RunnerError(f"expected {PREDICT_PLAN} in the --predict folder, received {one_line(exc)}") from None
    predictions = []
    for path in args.models:
        predictions.append(predict_model(path, args, args.predict, plan))
        gc.collect()
    return {"host": host_info(), "predictions": predictions}


def print_table(results: list, notes: list):
    rows = [("model", "runtime", "thr", "delegate", "input", "init", "first", "p50", "p90", "p99", "RSS MB",
             "throttled", "fast path")]
    for r in results:
        lat, fp = r["latency_ms"], r.get("fast_path")
        off = ", ".join(f"{op} x{n}" for op, n in (fp or {}).get("slow", {}).items())
        path = "-" if fp is None else "yes" if fp["on_fast_path"] else f"no ({off or str(fp['partitions']) + ' parts'})"
        rows.append((r["model"], r["runtime"], r["threads"], r["delegate"] or "-", r["input_dtype"],
                     f"{r['init_ms']:.2f}", f"{r['first_inference_ms']:.2f}", f"{lat['p50']:.3f}", f"{lat['p90']:.3f}",
                     f"{lat['p99']:.3f}", r["peak_rss_mb"], r["thermal"]["throttled"], path))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(v).ljust(w) if i < 5 else str(v).rjust(w) for i, (v, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines += ["(ms; p50/p90/p99 over the timed runs after the warm-up; RSS = peak resident memory)"] + notes
    print("\n".join(lines), file=sys.stderr)


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, like every other error of the runner
        raise RunnerError(f"expected valid arguments, received {message}")


def parse_args(argv) -> argparse.Namespace:
    p = Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", metavar="MODEL", help=".tflite or .onnx files")
    p.add_argument("--runtime", default="auto", choices=RUNTIMES,
                   help="auto: ai-edge-litert (else tflite-runtime) for .tflite, onnxruntime for .onnx; "
                        "litert: the faster of its CompiledModel and Interpreter in a short trial")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    p.add_argument("--threads", type=int, default=cores, help="CPU threads (default: the usable cores)")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs after the first inference")
    p.add_argument("--runs", type=int, default=100, help="timed runs (at least)")
    p.add_argument("--min-seconds", type=float, default=0.0, help="keep timing until this many seconds passed")
    p.add_argument("--ci-target", type=float, default=0.02,
                   help="then keep timing until the p50's 95 %% interval is within +-this share (0: off)")
    p.add_argument("--max-seconds", type=float, default=10.0, help="time limit per model for --ci-target")
    p.add_argument("--busy-limit", type=float, default=0.25,
                   help="other processes' CPU use (cores) above which a run counts as disturbed")
    p.add_argument("--retries", type=int, default=1, help="repeat a disturbed run this many times")
    p.add_argument("--cooldown", type=float, default=2.0, help="seconds of rest before a repeated run")
    p.add_argument("--table", action="store_true", help="also print a human table on stderr")
    p.add_argument("--dump-outputs", metavar="DIR", help="save <model>.input.npy/.output.npy of the seeded input")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated inputs")
    p.add_argument("--predict", metavar="DIR", help=f"no timing: run the .npy chunks that DIR/{PREDICT_PLAN} names "
                   "per model, save DIR/outputs/<model>.npy")
    p.add_argument("--op-profile", type=int, nargs="?", const=5, default=None, metavar="TOP",
                   help="no latency table: time per op type and per layer (runtimes/_op_profile.py); "
                        "prints the JSON and, on stderr, the TOP layers of each model")
    args = p.parse_args(argv)
    for name, low in (("threads", 1), ("runs", 1), ("warmup", 0), ("min_seconds", 0), ("ci_target", 0),
                      ("max_seconds", 0), ("busy_limit", 0), ("retries", 0), ("cooldown", 0)):
        if getattr(args, name) < low:
            raise RunnerError(f"expected --{name.replace('_', '-')} >= {low}, received {getattr(args, name)}")
    for path in args.models:  # every model and its runtime is checked before anything runs
        if not os.path.isfile(path):
            raise RunnerError(f"expected a model file, received {path!r} (no such file)")
        resolve_runtime(path, args.runtime)
    if args.dump_outputs:
        try:
            os.makedirs(args.dump_outputs, exist_ok=True)
        except OSError as exc:
            raise RunnerError(f"expected a writable --dump-outputs folder, received {one_line(exc)}") from None
    return args


def op_profile_report(args) -> dict:
    """{"host", "cpu_flags", "threads", "results": [op_profile record per model]}; top layers on stderr."""
    op_profile = importlib.import_module(f"{runtimes.__name__}._op_profile")  # in the runtimes/ folder
    results = []
    for path in args.models:
        runtime = "onnxruntime" if path.endswith(".onnx") else "litert"
        with native_output_silenced():
            record = op_profile.profile(path, runtime, args.threads)
        results.append(record)
        print(f"{record['file']} on {runtime}: whole {record['whole_ms']:.3f} ms, parts {record['sum_ms']:.3f} ms",
              file=sys.stderr)
        for layer in op_profile.top_layers(record, args.op_profile):
            print(f"  {layer['ms']:8.3f} ms  {layer['op']:<20} {layer['name'][:60]}", file=sys.stderr)
    return {"host": host_info(), "cpu_flags": op_profile.cpu_flags(), "threads": args.threads, "results": results}


def quiet_exit(code: int) -> int:
    """Flush, then silence stderr: LiteRT logs its teardown at exit; keep stderr to our lines."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    return code


def main(argv=None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        if args.predict:  # on-device validation: outputs, not latencies
            print(json.dumps(predict_report(args), indent=2))
            return quiet_exit(0)
        if args.op_profile is not None:  # where the time goes, op by op
            print(json.dumps(op_profile_report(args), indent=2))
            return quiet_exit(0)
        host, notes, results = host_info(), [], []
        for path in args.models:
            results.append(benchmark(path, args, notes))
            gc.collect()  # release this model before the next one's peak memory is measured
        code = 0
        print(json.dumps({"host": host, "results": results}, indent=2))
        if args.table:
            print_table(results, notes)
    except RunnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # LiteRT logs its teardown at exit; keep stderr to our lines
    return code


if __name__ == "__main__":
    sys.exit(main())
