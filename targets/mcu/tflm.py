"""TFLite Micro from the pipeline's side: which files it takes, the smallest arena that runs one, and its
outputs on held-out images — every call into its interpreter in a child process (targets/mcu/tflm_child.py),
so that a crash of the interpreter ends the child and becomes one line here (ToolError, exit 3).
"""
from __future__ import annotations

import functools
import json
import logging
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilenet_edge.pipeline.errors import PipelineError, ToolError

log = logging.getLogger(__name__)

CHILD = Path(__file__).with_name("tflm_child.py")
ALIGN = 16  # TFLite Micro aligns arena allocations to 16 bytes: the search steps in 16s
MAX_ARENA = 256 * 1024 ** 2
TIMEOUT_S = 1800
_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")


def _child(*args: str, what: str, timeout: float = 120) -> tuple[int, dict, str]:
    """Run one child command: (exit code, its JSON, its stderr). A crash (a signal, or no JSON) is a ToolError."""
    try:
        done = subprocess.run([sys.executable, str(CHILD), *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolError(f"expected TFLite Micro's interpreter to {what} within {timeout:.0f} s, received no answer") from None
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        answer = None
    if done.returncode in (0, 1) and isinstance(answer, dict):
        return done.returncode, answer, done.stderr
    raise ToolError(f"expected TFLite Micro's interpreter to {what}, received {crash_line(done.returncode, done.stderr)}")


def crash_line(code: int, stderr: str) -> str:
    """'SIGSEGV (the interpreter's process died; its last words: ...)' — one line whatever the child printed."""
    if code < 0:
        try:
            how = signal.Signals(-code).name
        except ValueError:
            how = f"signal {-code}"
    elif code in (134, 139):  # a shell-style 128 + SIGABRT / SIGSEGV
        how = signal.Signals(code - 128).name
    else:
        how = f"exit code {code}"
    said = [line.strip() for line in stderr.splitlines() if line.strip() and "RecordingMicroAllocator" not in line]
    last = f"; its last words: {' '.join(said[-1].split())[:200]}" if said else ""
    return f"{how} (the interpreter's process died{last})"


@functools.lru_cache(maxsize=1)
def tflm_ops() -> tuple[str, frozenset[str]]:
    """(tflite-micro version, the builtin ops its kernels cover), read from the installed package."""
    try:
        import importlib.util

        found = importlib.util.find_spec("tflite_micro") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise PipelineError("expected the tflite-micro package (the mcu extra: `make setup-mcu`, or pip install -r "
                            "requirements-mcu.lock), received an environment without it")
    _, answer, _ = _child("ops", what="list its ops")
    return answer["version"], frozenset(answer["builtin_ops"])


@dataclass(frozen=True)
class FileCheck:
    """What TFLite Micro needs of a .tflite, and what the file has."""

    ops: dict  # op name -> count, in the file
    input_dtype: str
    output_dtype: str
    float_tensors: tuple[str, ...]  # activations left in float (not full int8)
    missing_ops: tuple[str, ...]  # ops TFLite Micro has no kernel for
    tflm_version: str

    @property
    def problems(self) -> list[str]:
        found = []
        if self.missing_ops:
            found.append(f"ops TFLite Micro {self.tflm_version} has no kernel for: {', '.join(self.missing_ops)}")
        if (self.input_dtype, self.output_dtype) != ("int8", "int8"):
            found.append(f"{self.input_dtype} input and {self.output_dtype} output (TFLite Micro's int8 kernels take "
                         f"int8 I/O; the pipeline writes it with INT8_IO=int8)")
        if self.float_tensors:
            found.append(f"{len(self.float_tensors)} float activation(s), e.g. {self.float_tensors[0]} (not full int8)")
        return found


def check_file(path: Path) -> FileCheck:
    """The file's ops (read with LiteRT's interpreter) against TFLite Micro's; its I/O and activations' dtypes."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path))
        ops_details = interpreter._get_ops_details()  # the op list as the file states it (LiteRT's only accessor)
        tensors = interpreter.get_tensor_details()
    except Exception as exc:
        raise PipelineError(f"expected a .tflite file LiteRT can read, received {path} ({type(exc).__name__}: {exc})") from exc
    ops: dict[str, int] = {}
    for op in ops_details:
        ops[op["op_name"]] = ops.get(op["op_name"], 0) + 1
    version, supported = tflm_ops()
    produced = {i for op in ops_details for i in op["outputs"]}
    floats = tuple(t["name"] for t in tensors if t["index"] in produced and np.dtype(t["dtype"]) == np.float32)
    dtype = lambda detail: np.dtype(detail[0]["dtype"]).name  # noqa: E731
    return FileCheck(ops, dtype(interpreter.get_input_details()), dtype(interpreter.get_output_details()), floats,
                     tuple(sorted(set(ops) - supported)), version)


def require_tflm_file(path: Path) -> FileCheck:
    """check_file, refusing (PipelineError naming what is wrong) a file TFLite Micro's int8 path does not take."""
    check = check_file(path)
    if check.problems:
        raise PipelineError(f"expected a full-int8 .tflite with int8 I/O and only TFLite Micro's ops, received "
                            f"{path.name} with {'; '.join(check.problems)}")
    return check


@dataclass(frozen=True)
class Arena:
    bytes: int  # the smallest arena (16-byte steps) that allocates the model and runs one inference
    probes: int  # child processes the search ran
    recorded: int | None  # what TFLite Micro's recording allocator reported at a generous arena


def _probe(model: Path, size: int, crash_ok: bool) -> tuple[bool, int | None]:
    """(runs, recorded total) for one arena size; a crash is "does not run" when crash_ok, else a ToolError."""
    try:
        code, _, stderr = _child("probe", str(model), str(size), what=f"allocate {model.name} in {size} bytes")
    except ToolError:
        if crash_ok:  # tiny arenas crash the interpreter instead of failing cleanly: still "too small"
            return False, None
        raise
    match = _TOTAL.search(stderr)
    return code == 0, int(match.group(1)) if match else None


def find_arena(model: Path) -> Arena:
    """The smallest arena that runs `model`, by bisection over 16-byte steps, one child process per probe.

    Starts at TFLite Micro's own heuristic (10x the model's bytes), doubled until the model runs; a crash
    there (no arena size can help) is a ToolError. The recording allocator's total then bounds the search
    from above, and one step below it usually from below: the bisection between them is then done.
    Sizes are those of this host's build (64-bit pointers): a 32-bit microcontroller needs somewhat less.
    """
    hi = max(ALIGN, 10 * model.stat().st_size // ALIGN * ALIGN)
    probes = 0
    while True:
        probes += 1
        runs, recorded = _probe(model, hi, crash_ok=False)
        if runs:
            break
        if hi >= MAX_ARENA:
            raise ToolError(f"expected {model.name} to run in TFLite Micro within a {MAX_ARENA} byte arena, received "
                            f"a refusal at every size")
        hi *= 2
    if recorded is not None and recorded < hi:
        probes += 1
        if _probe(model, -(-recorded // ALIGN) * ALIGN, crash_ok=True)[0]:
            hi = -(-recorded // ALIGN) * ALIGN
    lo = 0  # an empty arena never runs a model
    if hi > ALIGN:  # the recorded total is usually exact: one step below it settles the search at once
        probes += 1
        if _probe(model, hi - ALIGN, crash_ok=True)[0]:
            hi -= ALIGN
        else:
            lo = hi - ALIGN
    while hi - lo > ALIGN:
        mid = (lo + hi) // 2 // ALIGN * ALIGN
        probes += 1
        if _probe(model, mid, crash_ok=True)[0]:
            hi = mid
        else:
            lo = mid
    log.info("%s: smallest TFLite Micro arena %d bytes (%d probes; recording allocator: %s)", model.name, hi, probes,
             recorded)
    return Arena(hi, probes, recorded)


def run_tflm(model: Path, arena: int, inputs: np.ndarray) -> tuple[np.ndarray, dict]:
    """Every input row through TFLite Micro's interpreter in a child with `arena` bytes: (outputs, its report)."""
    with tempfile.TemporaryDirectory(prefix="tflm-") as tmp:
        np.save(Path(tmp) / "in.npy", inputs)
        _, answer, _ = _child("run", str(model), str(arena), str(Path(tmp) / "in.npy"), str(Path(tmp) / "out.npy"),
                              what=f"run {model.name} on {len(inputs)} images", timeout=TIMEOUT_S)
        return np.load(Path(tmp) / "out.npy"), answer
