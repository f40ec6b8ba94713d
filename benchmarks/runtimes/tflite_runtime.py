"""tflite-runtime: the classic TFLite Interpreter as a separate wheel (old Raspberry Pi images).

Runner name: `tflite-runtime`. Its wheels (the last is 2.14) were built against numpy 1: under numpy 2 it
cannot be imported. Standard library + numpy + tflite-runtime only.
"""
from __future__ import annotations

import sys

import numpy as np

from ._common import RunnerError, import_module, installed, module_version, numpy_major
from ._interpreter import InterpreterBackend, audit_file

NAMES = ("tflite-runtime",)
CONTAINER = "tflite"
MODULE = "tflite_runtime"
PIP = "tflite-runtime"
INSTALL = 'pip install tflite-runtime "numpy<2"'
FAST_PATH = "xnnpack"


def version():
    return module_version(MODULE)


def incompatible(device: dict):
    """numpy 2 beside it: every tflite-runtime wheel was built against numpy 1 and fails to import."""
    major = numpy_major(device)
    if major is not None and major >= 2:
        return (f"received it with numpy {device['numpy']}, which it cannot import; "
                "fix: {python} -m pip install 'numpy<2' (or use ai-edge-litert)")
    return None


def _interpreter_module():
    if installed(MODULE) and int(np.__version__.split(".")[0]) >= 2:
        raise RunnerError(f"expected numpy<2 for tflite-runtime, received numpy {np.__version__}; "
                          f'fix: pip install "numpy<2" (or use ai-edge-litert)')
    return import_module(sys.modules[__name__], "interpreter")


def audit(path) -> dict:
    """The XNNPACK audit of a .tflite file (see _interpreter.xnnpack_audit)."""
    return audit_file(_interpreter_module(), path, "tflite-runtime")


def load(name: str, path: str, threads: int, *, batch: int | None = None, context=None):
    """The Interpreter backend of `path` (see _interpreter.InterpreterBackend)."""
    return InterpreterBackend(_interpreter_module(), path, threads, batch)
