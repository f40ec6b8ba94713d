"""TFLite Micro's interpreter in a process of its own: stdlib + numpy + the `tflite-micro` package (and, for
its op list, the runtime registry's standalone tflite_micro member).

The pipeline runs this file with `python tflm_child.py <command> ...` (targets/mcu/tflm.py) because TFLite
Micro's Python interpreter can take its whole process down (a segmentation fault on an arena of a few bytes;
an abort on files it does not expect): here that ends one child, which the parent reports as one line.

Commands (each prints one JSON object on stdout; exit 0 = ran, 1 = the interpreter refused cleanly):
  ops                              the builtin ops this build of TFLite Micro registers, and its version
  probe MODEL ARENA                allocate MODEL in an ARENA-byte arena and run one inference on zeros
  run MODEL ARENA INPUTS OUTPUTS   every row of INPUTS (.npy, the model's input dtype) -> OUTPUTS (.npy)
On `probe`, the recording allocator's figures go to stderr ("Arena allocation total N bytes").
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def supported_builtin_ops() -> dict:
    """The builtin ops this build of TFLite Micro has kernels for (read from the installed package by the runtime
    registry's member, benchmarks/runtimes/tflite_micro.py), and its version."""
    import tflite_micro
    from mobilenet_edge.benchmarks.runtimes.tflite_micro import supported_builtin_ops as registered

    return {"version": tflite_micro.__version__, "builtin_ops": sorted(registered())}


def _interpreter(model: str, arena: int):
    from tflite_micro import runtime

    return runtime.Interpreter.from_bytes(Path(model).read_bytes(), arena_size=arena)


def probe(model: str, arena: int) -> dict:
    try:
        interpreter = _interpreter(model, arena)
        detail = interpreter.get_input_details(0)
        interpreter.set_input(np.zeros(detail["shape"], detail["dtype"]), 0)
        interpreter.invoke()
    except RuntimeError as exc:  # too small an arena: TFLite Micro says so and refuses
        return {"ok": False, "error": " ".join(str(exc).split())}
    sys.stderr.flush()
    interpreter.print_allocations()
    return {"ok": True}


def run(model: str, arena: int, inputs: str, outputs: str) -> dict:
    interpreter = _interpreter(model, arena)
    batch = np.load(inputs)
    rows = []
    start = time.perf_counter()
    for row in batch:
        interpreter.set_input(row[None], 0)
        interpreter.invoke()
        rows.append(np.array(interpreter.get_output(0)).reshape(-1))
    seconds = time.perf_counter() - start
    np.save(outputs, np.stack(rows))
    return {"ok": True, "images": len(rows), "ms_per_image_host": round(1000 * seconds / max(1, len(rows)), 3)}


def main(argv: list[str]) -> int:
    command, *rest = argv
    if command == "ops":
        result = supported_builtin_ops()
    elif command == "probe":
        result = probe(rest[0], int(rest[1]))
    elif command == "run":
        result = run(rest[0], int(rest[1]), rest[2], rest[3])
    else:
        result = {"ok": False, "error": f"unknown command {command!r}"}
    print(json.dumps(result))
    return 0 if result.get("ok", True) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
