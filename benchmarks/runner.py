#!/usr/bin/env python3
"""Standalone latency benchmark for .tflite and .onnx models: copy this one file to a device and run it.

Needs only numpy and one runtime: ai-edge-litert, tflite-runtime (old Pi images, numpy<2) or onnxruntime.
No TensorFlow, no project install; Python 3.9+, numpy 1.x or 2.x.

    python runner.py mobilenet_0.75_224_int8.tflite mobilenet_0.75_224_fp32.onnx --threads 4 --table

stdout: one JSON document {"host": {...}, "results": [...]} (benchmark-<target>.json in docs/architecture.md,
minus "target"); --table adds a short human table on stderr. With --predict DIR it times nothing: it runs
fixed inputs shipped as .npy chunks through each model and saves the raw outputs (see predict_report). A missing or corrupt model, or a runtime that is
missing or cannot load the model, gives one line `error: expected ..., received ...` on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import glob
import importlib
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import types

import numpy as np

RUNTIMES = ("auto", "litert", "litert-interpreter", "litert-compiled", "tflite-runtime", "onnxruntime")
MODULES = {"litert": "ai_edge_litert", "tflite-runtime": "tflite_runtime", "onnxruntime": "onnxruntime"}
PIP_FIX = {"litert": "pip install ai-edge-litert", "tflite-runtime": 'pip install tflite-runtime "numpy<2"',
           "onnxruntime": "pip install onnxruntime"}
ARM_CORES = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0b": "Cortex-A76", "0xd0d": "Cortex-A77"}


class RunnerError(Exception):
    """A one-line `expected ..., received ...` message for the user."""


def one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).replace("└", " ").split())
    return f"{type(exc).__name__}: {text[:limit]}" if text else type(exc).__name__


@contextlib.contextmanager
def native_output_silenced():
    """Point fds 1 and 2 at /dev/null: LiteRT's C++ code logs its set-up there, which would bury the table and
    errors on stderr and could break the JSON on stdout."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved, sink = (os.dup(1), os.dup(2)), os.open(os.devnull, os.O_WRONLY)
    os.dup2(sink, 1)
    os.dup2(sink, 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(sink)


def import_runtime(name: str):
    """Import `litert`, `tflite-runtime` or `onnxruntime`; a missing or broken one names the pip fix."""
    module = {"litert": "ai_edge_litert.interpreter", "tflite-runtime": "tflite_runtime.interpreter"}.get(name, name)
    if name == "tflite-runtime" and installed(name) and int(np.__version__.split(".")[0]) >= 2:
        # Every tflite-runtime wheel (the last is 2.14) was built against numpy 1: under numpy 2 loading fails.
        raise RunnerError(f"expected numpy<2 for tflite-runtime, received numpy {np.__version__}; "
                          f'fix: pip install "numpy<2" (or use ai-edge-litert)')
    try:
        with native_output_silenced():  # tflite-runtime under numpy 2 prints a long ABI warning first
            return importlib.import_module(module)
    except Exception as exc:  # ImportError, or the numpy-ABI failures of wheels built for numpy 1
        raise RunnerError(f"expected runtime {name} to be importable, received {one_line(exc)}; "
                          f"fix: {PIP_FIX[name]}") from None


def installed(runtime: str) -> bool:
    return importlib.util.find_spec(MODULES[runtime]) is not None


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


# --- backends: load (timed as init_ms), feed inputs, run, read the first output ---------------------------------

class InterpreterBackend:
    """The classic TFLite Interpreter of ai-edge-litert or tflite-runtime, with its default XNNPACK delegate."""

    def __init__(self, module, path: str, threads: int):
        with native_output_silenced():
            start = time.perf_counter()
            # The Interpreter verifies the flatbuffer, so a corrupt file is a clean ValueError here.
            self.interpreter = module.Interpreter(model_path=path, num_threads=threads)
            self.interpreter.allocate_tensors()
            self.init_ms = ms_since(start)
        self.inputs = []
        for d in self.interpreter.get_input_details():
            scale, zero_point = d["quantization"]
            self.inputs.append({"index": d["index"], "name": d["name"], "shape": [int(s) for s in d["shape"]],
                                "dtype": np.dtype(d["dtype"]), "scale": float(scale) or None, "zero_point": zero_point})
        self.output_index = self.interpreter.get_output_details()[0]["index"]
        ops = getattr(self.interpreter, "_get_ops_details", None)
        # XNNPACK is the only delegate this Interpreter applies by default; a DELEGATE node means it took the graph.
        self.delegate = ("XNNPACK" if any(op["op_name"] == "DELEGATE" for op in ops()) else None) if ops else None
        self.fast_path = tflite_delegation(ops()) if ops else None
        self.run = self.interpreter.invoke

    def feed(self, arrays):
        for spec, array in zip(self.inputs, arrays):
            self.interpreter.set_tensor(spec["index"], array)

    def output(self) -> np.ndarray:
        return self.interpreter.get_tensor(self.output_index)


class CompiledModelBackend:
    """LiteRT's CompiledModel API on the CPU accelerator (XNNPACK); its buffers are made once and reused.

    It reports neither quantization parameters nor its partitioning, so `described` (from the classic Interpreter
    on the same file, which applies the same XNNPACK delegate) supplies the input specs and the delegate.
    """

    shared_environment = None  # one per process, created outside init_ms as the official tool does

    def __init__(self, path: str, threads: int, described):
        try:
            from ai_edge_litert import compiled_model, environment, hardware_accelerator, options as litert_options
        except ImportError as exc:
            raise RunnerError(f"expected ai-edge-litert with the CompiledModel API (2.3 or later), received "
                              f"{one_line(exc)}; fix: pip install -U ai-edge-litert") from None
        options = litert_options.Options(hardware_accelerators=hardware_accelerator.HardwareAccelerator.CPU,
                                         cpu_options=litert_options.CpuOptions(num_threads=threads))
        with native_output_silenced():
            if CompiledModelBackend.shared_environment is None:
                CompiledModelBackend.shared_environment = environment.Environment.create()
            start = time.perf_counter()
            model = compiled_model.CompiledModel.from_file(path, environment=CompiledModelBackend.shared_environment,
                                                           options=options)
            self.in_buffers, self.out_buffers = model.create_input_buffers(0), model.create_output_buffers(0)
            self.init_ms = ms_since(start)
        signature, names = next(iter(model.get_signature_list().items()))
        known, details = {s["name"]: s for s in described.inputs}, model.get_input_tensor_details(signature)
        self.inputs = [dict(known.get(details[n]["name"], {"scale": None, "zero_point": 0}),
                            shape=list(details[n]["shape"]), dtype=np.dtype(details[n]["dtype"]))
                       for n in names["inputs"]]
        out = model.get_output_tensor_details(signature)[names["outputs"][0]]
        self.output_shape, self.output_dtype = list(out["shape"]), np.dtype(out["dtype"])
        self.delegate, self.fast_path, self.model = described.delegate, described.fast_path, model
        self.run = functools.partial(model.run_by_index, 0, self.in_buffers, self.out_buffers)

    def feed(self, arrays):
        with native_output_silenced():  # the first write sets up (and logs) a LiteRT environment of its own
            for buffer, array in zip(self.in_buffers, arrays):
                buffer.write(array)

    def output(self) -> np.ndarray:
        size = int(np.prod(self.output_shape))
        return self.out_buffers[0].read(size, self.output_dtype).reshape(self.output_shape)


class OnnxBackend:
    """A plain onnxruntime CPU session: N intra-op threads, one inter-op thread."""

    delegate = None

    def __init__(self, ort, path: str, threads: int):
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = threads, 1, 3
        start = time.perf_counter()
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.init_ms = ms_since(start)
        self.ort, self.path, self.fast_path = ort, path, None
        self.inputs, self.feeds, self.outputs = [], {}, None
        for i in self.session.get_inputs():
            shape = [d if isinstance(d, int) and d > 0 else None for d in i.shape]
            if None in shape[1:]:
                raise RunnerError(f"expected static input dimensions after the batch, received {i.name}{i.shape}")
            dtype = {"float": "float32", "double": "float64"}.get(i.type[7:-1], i.type[7:-1])  # "tensor(uint8)"
            self.inputs.append({"name": i.name, "shape": [1] + shape[1:], "dtype": np.dtype(dtype)})

    def feed(self, arrays):
        self.feeds = {spec["name"]: array for spec, array in zip(self.inputs, arrays)}
        if self.fast_path is None:  # one profiled run in a session of its own, outside every timing
            self.fast_path = onnx_kernels(self.ort, self.path, self.feeds)

    def run(self):
        self.outputs = self.session.run(None, self.feeds)

    def output(self) -> np.ndarray:
        return self.outputs[0]


# --- fast path: which ops the runtime's fast kernels take on this device (pipeline/convert/fastpath.py, standalone) ------

EDGE_OPS = ("QUANTIZE", "DEQUANTIZE", "SOFTMAX")  # builtin I/O conversions at the graph's edges: cheap
ONNX_LAYOUT = ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Shape", "ReorderInput",
               "ReorderOutput", "Concat", "Pad", "Gather", "Slice")


def _counts(names) -> dict:
    counts = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def tflite_delegation(ops: list) -> dict:
    """XNNPACK partitions and the op types inside / outside them, from Interpreter._get_ops_details().

    Each DELEGATE node is one partition; the ops it replaced are found by walking back from its output tensors
    to its input tensors. The same rule as pipeline/convert/fastpath.py, copied because this file stands alone.
    """
    original = [op for op in ops if op["op_name"] != "DELEGATE"]
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    producer = {int(t): op["index"] for op in original for t in op["outputs"]}
    inputs_of = {op["index"]: [int(t) for t in op["inputs"] if t >= 0] for op in original}
    inside = set()
    for node in delegates:
        boundary, stack = {int(t) for t in node["inputs"]}, [int(t) for t in node["outputs"]]
        while stack:
            tensor = stack.pop()
            index = producer.get(tensor)
            if tensor in boundary or index is None or index in inside:
                continue
            inside.add(index)
            stack.extend(inputs_of[index])
    builtin = [op["op_name"] for op in original if op["index"] not in inside]
    slow = _counts(n for n in builtin if n not in EDGE_OPS)
    return {"runtime": "xnnpack", "ops": len(original), "partitions": len(delegates),
            "fast": _counts(op["op_name"] for op in original if op["index"] in inside), "slow": slow,
            "edge": _counts(n for n in builtin if n in EDGE_OPS), "on_fast_path": len(delegates) == 1 and not slow}


def onnx_kernels(ort, path: str, feeds: dict) -> dict:
    """The kernels one profiled onnxruntime run executes, by op type: integer (QLinear*...), Q/DQ, and float ops,
    which in a quantized graph run between Dequantize/Quantize (a QDQ group onnxruntime could not fuse)."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        options = ort.SessionOptions()
        options.enable_profiling, options.log_severity_level = True, 3
        options.profile_file_prefix = os.path.join(scratch, "profile")
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        session.run(None, feeds)
        with open(session.end_profiling()) as f:
            events = json.load(f)
    names = [e["args"]["op_name"] for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
    integer = [n for n in names if n.startswith(("QLinear", "QGemm", "NhwcQLinear")) or n.endswith("Integer")]
    qdq = [n for n in names if n in ("QuantizeLinear", "DequantizeLinear")]
    other = [n for n in names if n not in integer and n not in qdq and n not in ONNX_LAYOUT]
    quantized = bool(integer or qdq)
    return {"runtime": "onnxruntime-cpu", "ops": len(names), "partitions": None,
            "fast": _counts(integer + ([] if quantized else other)), "slow": _counts(other if quantized else []),
            "edge": _counts(qdq), "on_fast_path": not (quantized and other)}


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
    for dist in ("ai-edge-litert", "tflite-runtime", "onnxruntime"):
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
    """The runtime for `path`: `auto` picks what is installed (ai-edge-litert before tflite-runtime)."""
    name, ext = os.path.basename(path), os.path.splitext(path)[1].lower()
    if ext not in (".tflite", ".onnx"):
        raise RunnerError(f"expected a .tflite or .onnx model, received {path!r}")
    if ext == ".onnx" and requested not in ("auto", "onnxruntime"):
        raise RunnerError(f"expected --runtime auto or onnxruntime for {name}, received --runtime {requested}")
    if ext == ".tflite" and requested == "onnxruntime":
        raise RunnerError(f"expected a LiteRT/TFLite runtime for {name}, received --runtime onnxruntime")
    if ext == ".onnx" or requested != "auto":
        return "onnxruntime" if ext == ".onnx" else requested
    for runtime in ("litert", "tflite-runtime"):
        if installed(runtime):
            return runtime
    raise RunnerError(f"expected ai-edge-litert or tflite-runtime to run {name}, received neither installed; "
                      f"fix: {PIP_FIX['litert']}")


def load_backend(runtime: str, path: str, threads: int, described=None):
    """Load `path` with one concrete runtime; a CompiledModel needs `described` (see describe_tflite)."""
    try:
        if runtime == "onnxruntime":
            return OnnxBackend(import_runtime("onnxruntime"), path, threads)
        module = import_runtime("tflite-runtime" if runtime == "tflite-runtime" else "litert")
        if runtime == "litert-compiled":
            if not compiled_model_safe():
                raise RunnerError("expected an ARM core with LSE atomics for the CompiledModel, received one "
                                  "without (e.g. Cortex-A72); use --runtime litert-interpreter")
            return CompiledModelBackend(path, threads, described)
        return InterpreterBackend(module, path, threads)
    except RunnerError:
        raise
    except Exception as exc:
        raise RunnerError(f"expected a model that {runtime} can load, received {os.path.basename(path)} "
                          f"({one_line(exc)})") from None


def describe_tflite(path: str):
    """Input specs and delegate of a .tflite from a 1-thread ai-edge-litert Interpreter, which is then released.

    Loading it first also verifies the file: a CompiledModel crashes on a truncated flatbuffer.
    """
    interpreter = load_backend("litert-interpreter", path, 1)
    return types.SimpleNamespace(inputs=interpreter.inputs, delegate=interpreter.delegate,
                                 fast_path=interpreter.fast_path)


def compiled_model_safe() -> bool:
    """False on ARMv8.0 cores without LSE atomics (Raspberry Pi 4's Cortex-A72).

    ai-edge-litert 2.3's CompiledModel loads an accelerator library built with LSE, which kills the
    process with SIGILL on such cores; the classic Interpreter works there.
    """
    if platform.machine() not in ("aarch64", "arm64"):
        return True
    features = re.search(r"^Features\s*:(.*)$", read_text("/proc/cpuinfo") or "", re.MULTILINE)
    return bool(features and "atomics" in features.group(1).split())


def pick_litert_path(path: str, threads: int, seed: int, described, notes: list) -> str:
    """Time ai-edge-litert's CompiledModel and classic Interpreter briefly, interleaved; return the faster one."""
    if not compiled_model_safe():
        notes.append("CompiledModel skipped: this ARM core lacks LSE atomics (ai-edge-litert 2.3 dies with SIGILL)")
        return "litert-interpreter"
    try:
        candidates = {"litert-compiled": load_backend("litert-compiled", path, threads, described),
                      "litert-interpreter": load_backend("litert-interpreter", path, threads)}
    except RunnerError as exc:
        notes.append(f"{os.path.basename(path)}: CompiledModel unavailable ({exc}), using the Interpreter")
        return "litert-interpreter"
    times = {name: [] for name in candidates}
    for backend in candidates.values():
        backend.feed(make_inputs(backend.inputs, seed))
        time_runs(backend.run, 3)
    for _ in range(6):  # short turns, so load that comes and goes hits both paths
        for name, backend in candidates.items():
            times[name].extend(time_runs(backend.run, 3))
    p50 = {name: float(np.median(t)) for name, t in times.items()}
    best = min(p50, key=p50.get)
    notes.append(f"{os.path.basename(path)}: trial p50 " + ", ".join(f"{n} {v:.3f} ms" for n, v in p50.items())
                 + f" -> {best}")
    return best


def benchmark(path: str, args, notes: list) -> dict:
    """Load, run once, warm up and time one model; then, if asked, dump its output on the seeded input."""
    runtime = resolve_runtime(path, args.runtime)
    described = describe_tflite(path) if runtime in ("litert", "litert-compiled") else None
    if runtime == "litert":
        runtime = pick_litert_path(path, args.threads, args.seed, described, notes)
    gc.collect()
    reset_peak_rss()
    before = thermal_state()
    backend = load_backend(runtime, path, args.threads, described)
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
    module = sys.modules.get(MODULES["litert" if runtime.startswith("litert") else runtime])
    return {"model": os.path.basename(path), "bytes": os.path.getsize(path), "runtime": runtime,
            "runtime_version": getattr(module, "__version__", None), "threads": args.threads,
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
    module = sys.modules.get(MODULES["litert" if runtime.startswith("litert") else runtime])
    return {"model": name, "runtime": runtime, "runtime_version": getattr(module, "__version__", None),
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
                   help="no latency table: time per op type and per layer (op_profile.py beside this file); "
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
    try:
        from mobilenet_edge.benchmarks import op_profile  # installed with the project
    except ImportError:  # copied beside this file on a device
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import op_profile
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
