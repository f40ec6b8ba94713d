"""ai-edge-litert (LiteRT): .tflite files through its classic Interpreter or its CompiledModel API.

Runner names: `litert` (the faster of the two in a short interleaved trial), `litert-interpreter`,
`litert-compiled`. Both apply XNNPACK on the CPU. Standard library + numpy + ai-edge-litert only.
"""
from __future__ import annotations

import functools
import os
import sys
import time
import types

import numpy as np

from ._common import RunnerError, arm_without_lse, import_module, ms_since, module_version, native_output_silenced, one_line
from ._interpreter import InterpreterBackend, audit_file
from ._probe import probe

NAMES = ("litert", "litert-interpreter", "litert-compiled")
CONTAINER = "tflite"
MODULE = "ai_edge_litert"
PIP = "ai-edge-litert"
INSTALL = "pip install ai-edge-litert"
FAST_PATH = "xnnpack"

_SIGILL = ("received one without (e.g. a Pi 4's Cortex-A72), where ai-edge-litert's CompiledModel kills the "
           "process with SIGILL; use runtime litert-interpreter")


def version():
    return module_version(MODULE)


def unusable(name: str, device: dict):
    """`litert-compiled` on an ARM core without LSE atomics: ai-edge-litert 2.3's CompiledModel loads an
    accelerator library built for ARMv8.1+, which aborts the whole process there (the Interpreter works)."""
    if name == "litert-compiled" and arm_without_lse(device):
        return "expected a CPU with LSE atomics (ARMv8.1+) for litert-compiled, " + _SIGILL
    return None


def safe_name(name: str, device: dict) -> str:
    """`litert` would try the CompiledModel: on a core without LSE atomics, run the Interpreter instead."""
    return "litert-interpreter" if name in ("litert", "litert-compiled") and arm_without_lse(device) else name


def audit(path) -> dict:
    """The XNNPACK audit of a .tflite file (see _interpreter.xnnpack_audit)."""
    return audit_file(import_module(sys.modules[__name__], "interpreter"), path, "ai-edge-litert")


def load(name: str, path: str, threads: int, *, batch: int | None = None, context=None):
    """A backend of `path`: the Interpreter (`litert`, `litert-interpreter`) or the CompiledModel.

    context: `prepare`'s description of the file, which a CompiledModel needs (made here when None).
    """
    if name == "litert-compiled":
        reason = unusable(name, probe(()))
        if reason:
            raise RunnerError(reason)
        return CompiledModelBackend(path, threads, context or prepare(name, path))
    return InterpreterBackend(import_module(sys.modules[__name__], "interpreter"), path, threads, batch)


def prepare(name: str, path: str):
    """Input specs and delegate of a .tflite from a 1-thread Interpreter, which is then released; None unless
    `name` may load a CompiledModel. Loading it first also verifies the file: a CompiledModel crashes on a
    truncated flatbuffer."""
    if name not in ("litert", "litert-compiled"):
        return None
    try:
        interpreter = load("litert-interpreter", path, 1)
    except RunnerError:
        raise
    except Exception as exc:
        raise RunnerError(f"expected a model that litert-interpreter can load, received {os.path.basename(path)} "
                          f"({one_line(exc)})") from None
    return types.SimpleNamespace(inputs=interpreter.inputs, outputs=interpreter.outputs,
                                 delegate=interpreter.delegate, fast_path=interpreter.fast_path)


def choose(name: str, path: str, threads: int, context, trial, notes: list) -> str:
    """`litert`: time the CompiledModel and the classic Interpreter briefly, interleaved (`trial`, the runner's:
    {name: backend} -> {name: p50 ms}); return the faster one's name. Other names are returned as they are."""
    if name != "litert":
        return name
    if unusable("litert-compiled", probe(())):
        notes.append("CompiledModel skipped: this ARM core lacks LSE atomics (ai-edge-litert 2.3 dies with SIGILL)")
        return "litert-interpreter"
    try:
        candidates = {"litert-compiled": load("litert-compiled", path, threads, context=context),
                      "litert-interpreter": load("litert-interpreter", path, threads)}
    except Exception as exc:
        notes.append(f"{os.path.basename(path)}: CompiledModel unavailable ({exc}), using the Interpreter")
        return "litert-interpreter"
    p50 = trial(candidates)
    best = min(p50, key=p50.get)
    notes.append(f"{os.path.basename(path)}: trial p50 " + ", ".join(f"{n} {v:.3f} ms" for n, v in p50.items())
                 + f" -> {best}")
    return best


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
        first = described.outputs[0]  # quantization as the Interpreter reports it for the same file
        self.outputs = [{"name": names["outputs"][0], "shape": self.output_shape, "dtype": self.output_dtype,
                         "scale": first["scale"], "zero_point": first["zero_point"]}]
        self.batch = int(self.inputs[0]["shape"][0]) if self.inputs else 1
        self.delegate, self.fast_path, self.model = described.delegate, described.fast_path, model
        self.run = functools.partial(model.run_by_index, 0, self.in_buffers, self.out_buffers)

    def feed(self, arrays):
        with native_output_silenced():  # the first write sets up (and logs) a LiteRT environment of its own
            for buffer, array in zip(self.in_buffers, arrays):
                buffer.write(array)

    def output(self) -> np.ndarray:
        size = int(np.prod(self.output_shape))
        return self.out_buffers[0].read(size, self.output_dtype).reshape(self.output_shape)
