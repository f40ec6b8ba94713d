"""TFLite Micro (the `tflite-micro` package): .tflite files on the microcontroller's reference kernels, here.

Runner name: `tflite-micro`. Its Python interpreter runs the kernels a Cortex-M runs (no XNNPACK, no threads),
in an arena of a fixed size: this backend takes TFLite Micro's own guess (10x the file's bytes), doubled until
the model allocates. The package publishes nightly builds only (requirements-mcu.lock pins one); `make mcu`
uses it too, through targets/mcu/ (the smallest arena, accuracy on held-out images, in a child process, since
the interpreter can take its process down). Standard library + numpy + tflite-micro only.
"""
from __future__ import annotations

import importlib.util
import os
import re
import sys
import time

import numpy as np

from ._common import RunnerError, counts, import_module, ms_since, module_version, native_output_silenced, one_line

NAMES = ("tflite-micro",)
CONTAINER = "tflite"
MODULE = "tflite_micro"
PIP = "tflite-micro"
INSTALL = "pip install -r requirements-mcu.lock (tflite-micro publishes nightly builds only)"
FAST_PATH = "tflite-micro"
MAX_ARENA = 64 * 1024 ** 2


def version():
    """Its version; before it is imported, read from its _version.py (importing loads its native library)."""
    loaded = module_version(MODULE)
    spec = None if loaded else importlib.util.find_spec(MODULE)
    if loaded or spec is None or not spec.submodule_search_locations:
        return loaded
    try:
        with open(os.path.join(spec.submodule_search_locations[0], "python", "tflite_micro", "_version.py")) as f:
            found = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", f.read())
    except OSError:
        return None
    return found.group(1) if found else None


def _ops(path: str) -> list[str]:
    """The file's builtin op names, in order, read with the package's own flatbuffer schema."""
    schema = import_module(sys.modules[__name__], "tensorflow.lite.micro.python.schema_py_generated")
    runtime = import_module(sys.modules[__name__], "python.tflite_micro.runtime")
    with open(path, "rb") as f:
        model = runtime.convert_bytearray_to_object(bytearray(f.read()))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if k.isupper()}
    return [names.get(runtime.get_builtin_code_from_operator_code(model.operatorCodes[op.opcodeIndex]), "CUSTOM")
            for g in model.subgraphs for op in (g.operators or [])]


def supported_builtin_ops() -> set[str]:
    """Builtin op names this build of TFLite Micro has a kernel for: the `tflite::Register_<OP>()` functions
    compiled into the package's `_runtime.so` (read from its symbol names), kept when <OP> is a builtin of the
    package's own schema. Itanium-mangled names carry the identifier's length before it
    (`_ZN6tflite16Register_CONV_2DEv`): the length says where the op name ends."""
    schema = import_module(sys.modules[__name__], "tensorflow.lite.micro.python.schema_py_generated")
    native = import_module(sys.modules[__name__], "python.tflite_micro._runtime")
    with open(native.__file__, "rb") as f:
        data = f.read()
    registered = set()
    for match in re.finditer(rb"(\d+)Register_", data):
        digits, start = match.group(1).decode(), match.start() + len(match.group(1))
        for i in range(len(digits)):
            name = data[start:start + int(digits[i:])]
            if re.fullmatch(rb"Register_[A-Z0-9_]+", name):
                registered.add(name.decode().removeprefix("Register_"))
                break
    return registered & {name for name in vars(schema.BuiltinOperator) if name.isupper()}


def audit(path) -> dict:
    """What runs on TFLite Micro's kernels (on a Cortex-M its optimised CMSIS-NN ones; here the reference ones):
    `fast` = the file's ops it has a kernel for, `slow` = those it lacks (such a file cannot run on it)."""
    try:
        ops = _ops(str(path))
        supported = supported_builtin_ops()
    except RunnerError:
        raise
    except Exception as exc:
        raise RunnerError(f"expected {os.path.basename(str(path))} to load in tflite-micro, received {one_line(exc)}") from exc
    missing = [op for op in ops if op not in supported]
    return {"runtime": FAST_PATH, "ops": len(ops), "partitions": None, "fast": counts(op for op in ops if op in supported),
            "slow": counts(missing), "edge": {}, "on_fast_path": not missing}


def _spec(detail: dict, index: int) -> dict:
    q = detail.get("quantization_parameters") or {}
    scales, zero_points = list(q.get("scales", [])), list(q.get("zero_points", []))
    return {"index": index, "name": f"{index}", "shape": [int(s) for s in detail["shape"]],
            "dtype": np.dtype(detail["dtype"]), "scale": float(scales[0]) if scales else None,
            "zero_point": int(zero_points[0]) if zero_points else 0}


class MicroBackend:
    """TFLite Micro's Python interpreter on one file, batch 1 (the file's own shape)."""

    def __init__(self, runtime, path: str):
        with open(path, "rb") as f:
            data = f.read()
        arena = max(16, 10 * len(data))
        with native_output_silenced():
            start = time.perf_counter()
            while True:
                try:
                    self.interpreter = runtime.Interpreter.from_bytes(data, arena_size=arena)
                    break
                except RuntimeError:  # the arena is too small: TFLite Micro refuses cleanly at these sizes
                    if arena >= MAX_ARENA:
                        raise
                    arena *= 2
            self.init_ms = ms_since(start)
        self.arena_bytes = arena
        self.batch = 1
        self.inputs = [_spec(self.interpreter.get_input_details(0), 0)]
        self.outputs = [_spec(self.interpreter.get_output_details(0), 0)]
        self.delegate = None
        self.fast_path = audit(path)
        self.run = self.interpreter.invoke

    def feed(self, arrays):
        self.interpreter.set_input(np.asarray(arrays[0]), 0)

    def output(self) -> np.ndarray:
        return np.asarray(self.interpreter.get_output(0))


def load(name: str, path: str, threads: int, *, batch: int | None = None, context=None):
    """The TFLite Micro backend of `path` (single-threaded, as a microcontroller; `threads` is ignored)."""
    return MicroBackend(import_module(sys.modules[__name__], "python.tflite_micro.runtime"), path)
