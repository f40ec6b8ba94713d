"""What every runtime module shares: the one-line error, silencing native logs, the import with its pip fix.

Standard library + numpy only (this folder is copied to devices beside runner.py).
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import time


class RunnerError(Exception):
    """A one-line `expected ..., received ...` message for the user (the runner prints it and exits 2)."""


def one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).replace("└", " ").split())
    return f"{type(exc).__name__}: {text[:limit]}" if text else type(exc).__name__


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


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


def installed(module: str) -> bool:
    """Whether the top-level `module` can be found (found, not imported: importing can take seconds)."""
    return importlib.util.find_spec(module) is not None


def import_module(runtime, submodule: str = ""):
    """Import `runtime.MODULE` (+ `.submodule`); a missing or broken one names the pip fix of `runtime`."""
    try:
        with native_output_silenced():  # tflite-runtime under numpy 2 prints a long ABI warning first
            return importlib.import_module(runtime.MODULE + (f".{submodule}" if submodule else ""))
    except Exception as exc:  # ImportError, or the numpy-ABI failures of wheels built for numpy 1
        raise RunnerError(f"expected runtime {runtime.NAMES[0]} to be importable, received {one_line(exc)}; "
                          f"fix: {runtime.INSTALL}") from None


def module_version(module: str):
    """`module.__version__` when it is already imported, else None (versions are read after loading)."""
    return getattr(sys.modules.get(module), "__version__", None)


def counts(names) -> dict:
    """Op type -> count, sorted by op type."""
    found: dict = {}
    for name in names:
        found[name] = found.get(name, 0) + 1
    return dict(sorted(found.items()))


def arm_without_lse(device: dict) -> bool:
    """An ARMv8.0 core (Raspberry Pi 4's Cortex-A72, Pi 3's A53): no LSE atomics. `device` is a probe dict."""
    features = device.get("cpu_features")
    return device.get("machine") in ("aarch64", "arm64") and features is not None and "atomics" not in features


def numpy_major(device: dict):
    numpy = device.get("numpy")
    return int(numpy.split(".")[0]) if numpy else None
