"""The classic TFLite Interpreter (ai-edge-litert's or tflite-runtime's) as a backend, and its XNNPACK audit.

Shared by `litert.py` and `tflite_runtime.py`, whose Interpreter classes have the same API. Standard library +
numpy only; the Interpreter's module is passed in.
"""
from __future__ import annotations

import os
import time

import numpy as np

from ._common import RunnerError, counts, ms_since, native_output_silenced, one_line

EDGE_OPS = ("QUANTIZE", "DEQUANTIZE", "SOFTMAX")  # builtin I/O conversions at the graph's edges: cheap


def _spec(detail: dict) -> dict:
    scale, zero_point = detail["quantization"]
    return {"index": detail["index"], "name": detail["name"], "shape": [int(s) for s in detail["shape"]],
            "dtype": np.dtype(detail["dtype"]), "scale": float(scale) or None, "zero_point": zero_point}


class InterpreterBackend:
    """The Interpreter with its default XNNPACK delegate.

    batch: None keeps the file's input shape (the runner: batch 1 as apps run it); a number resizes an input
    whose batch dimension is dynamic to it (validation). `batch` then says what one run takes.
    """

    def __init__(self, module, path: str, threads: int, batch: int | None = None):
        with native_output_silenced():
            start = time.perf_counter()
            # The Interpreter verifies the flatbuffer, so a corrupt file is a clean ValueError here.
            self.interpreter = module.Interpreter(model_path=path, num_threads=threads)
            first = self.interpreter.get_input_details()[0]
            self.batch = int(first["shape"][0])
            if batch is not None and first["shape_signature"][0] == -1 and batch != self.batch:
                self.interpreter.resize_tensor_input(first["index"], [batch, *first["shape"][1:]])
                self.batch = batch
            self.interpreter.allocate_tensors()
            self.init_ms = ms_since(start)
        self.inputs = [_spec(d) for d in self.interpreter.get_input_details()]
        self.outputs = [_spec(d) for d in self.interpreter.get_output_details()]
        self.output_index = self.outputs[0]["index"]
        ops = getattr(self.interpreter, "_get_ops_details", None)
        # XNNPACK is the only delegate this Interpreter applies by default; a DELEGATE node means it took the graph.
        self.delegate = ("XNNPACK" if any(op["op_name"] == "DELEGATE" for op in ops()) else None) if ops else None
        self.fast_path = xnnpack_audit(ops()) if ops else None
        self.run = self.interpreter.invoke

    def feed(self, arrays):
        for spec, array in zip(self.inputs, arrays):
            self.interpreter.set_tensor(spec["index"], array)

    def output(self) -> np.ndarray:
        return self.interpreter.get_tensor(self.output_index)


def xnnpack_audit(ops: list) -> dict:
    """XNNPACK partitions and the op types inside / outside them, from Interpreter._get_ops_details().

    `ops` (after allocate_tensors()): the original ops, then one DELEGATE node per partition whose inputs and
    outputs are the partition's boundary tensors; the ops a partition replaced are found by walking back from
    its outputs to its inputs. Ops outside every partition run on TFLite's builtin kernels; the file is on the
    fast path when it is one partition and nothing but the I/O conversions at its edges stays builtin.
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
    builtin = [op for op in original if op["index"] not in inside]
    edge = at_the_edges(builtin, producer, inputs_of)
    slow = counts(op["op_name"] for op in builtin if op["index"] not in edge)
    return {"runtime": "xnnpack", "ops": len(original), "partitions": len(delegates),
            "fast": counts(op["op_name"] for op in original if op["index"] in inside), "slow": slow,
            "edge": counts(op["op_name"] for op in builtin if op["index"] in edge),
            "on_fast_path": len(delegates) == 1 and not slow}


def at_the_edges(builtin: list, producer: dict, inputs_of: dict) -> set:
    """The builtin EDGE_OPS ops at the graph's edges: fed only by graph inputs (or other such ops), or feeding
    only graph outputs (or other such ops). A SOFTMAX or QUANTIZE in the middle (attention) is not an edge."""
    candidates = {op["index"]: op for op in builtin if op["op_name"] in EDGE_OPS}
    consumers: dict[int, list[int]] = {}
    for index, tensors in inputs_of.items():
        for t in tensors:
            consumers.setdefault(t, []).append(index)
    edge: set = set()
    changed = True
    while changed:
        changed = False
        for index, op in candidates.items():
            if index in edge:
                continue
            fed = all(producer.get(t) is None or producer[t] in edge for t in inputs_of[index])
            feeds = all(c in edge for t in op["outputs"] for c in consumers.get(int(t), []))
            if fed or feeds:
                edge.add(index)
                changed = True
    return edge


def audit_file(module, path: str, runtime_name: str) -> dict:
    """The XNNPACK audit of a .tflite file in `module`'s Interpreter (1 thread)."""
    try:
        with native_output_silenced():
            interpreter = module.Interpreter(model_path=str(path), num_threads=1)
            interpreter.allocate_tensors()  # XNNPACK partitions the graph here
        ops = interpreter._get_ops_details()  # private, but the only view of the delegated graph in Python
    except Exception as exc:
        raise RunnerError(f"expected {os.path.basename(str(path))} to load in {runtime_name}, "
                          f"received {one_line(exc)}") from exc
    return xnnpack_audit(ops)
