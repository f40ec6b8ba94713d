"""ONNX Runtime: .onnx files in a plain CPU session (CPUExecutionProvider).

Runner name: `onnxruntime`. Standard library + numpy + onnxruntime only; `audit` (the pipeline's, on this
machine) also reads the optimised graph with the `onnx` package.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import numpy as np

from ._common import RunnerError, counts, import_module, ms_since, module_version, one_line

NAMES = ("onnxruntime",)
CONTAINER = "onnx"
MODULE = "onnxruntime"
PIP = "onnxruntime"
INSTALL = "pip install onnxruntime"
FAST_PATH = "onnxruntime-cpu"

QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
# Data movement only: neither integer nor float arithmetic worth naming.
LAYOUT_OPS = frozenset({"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Shape",
                        "ReorderInput", "ReorderOutput", "Concat", "Pad", "Gather", "Slice"})
INTEGER_PREFIXES = ("QLinear", "QGemm", "QAttention", "QEmbed", "NhwcQLinear")
INTEGER_OPS = frozenset({"MatMulInteger", "ConvInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul",
                         "MatMulIntegerToFloat", "QuickGelu"})


def version():
    return module_version(MODULE)


def is_integer_kernel(op_type: str) -> bool:
    return op_type.startswith(INTEGER_PREFIXES) or op_type in INTEGER_OPS


def _ort():
    return import_module(sys.modules[__name__])


def load(name: str, path: str, threads: int, *, batch: int | None = None, context=None):
    """A CPU session of `path` (see OnnxBackend)."""
    return OnnxBackend(_ort(), path, threads, batch)


class OnnxBackend:
    """A plain onnxruntime CPU session: N intra-op threads, one inter-op thread.

    batch: None feeds batch 1 (the runner, which profiles the kernels on its first feed); a number (validation)
    only turns that profiling off: a dynamic batch dimension takes each batch as it is fed.
    """

    delegate = None

    def __init__(self, ort, path: str, threads: int, batch: int | None = None):
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = threads, 1, 3
        start = time.perf_counter()
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.init_ms = ms_since(start)
        self.ort, self.path, self.fast_path, self.profile = ort, path, None, batch is None
        self.inputs, self.feeds, self.results = [], {}, None
        for i in self.session.get_inputs():
            shape = [d if isinstance(d, int) and d > 0 else None for d in i.shape]
            if None in shape[1:]:
                raise RunnerError(f"expected static input dimensions after the batch, received {i.name}{i.shape}")
            self.inputs.append({"name": i.name, "shape": [1] + shape[1:], "dtype": _dtype(i.type),
                                "scale": None, "zero_point": 0})
        fixed = self.session.get_inputs()[0].shape[0]
        self.batch = fixed if isinstance(fixed, int) and fixed > 0 else None  # None: any batch runs as fed
        self.outputs = [{"name": o.name, "shape": list(o.shape), "dtype": _dtype(o.type), "scale": None,
                         "zero_point": 0} for o in self.session.get_outputs()]

    def feed(self, arrays):
        self.feeds = {spec["name"]: array for spec, array in zip(self.inputs, arrays)}
        if self.fast_path is None and self.profile:  # one profiled run in a session of its own, untimed
            self.fast_path = profiled_kernels(self.ort, self.path, self.feeds)

    def run(self):
        self.results = self.session.run(None, self.feeds)

    def output(self) -> np.ndarray:
        return self.results[0]


def _dtype(onnx_type: str) -> np.dtype:
    name = onnx_type[7:-1]  # "tensor(uint8)"
    return np.dtype({"float": "float32", "double": "float64"}.get(name, name))


def profiled_kernels(ort, path: str, feeds: dict) -> dict:
    """The kernels one profiled run executes, by op type: integer (QLinear*...), Q/DQ, and float ops, which in a
    quantized graph run between Dequantize/Quantize (a QDQ group onnxruntime could not fuse). What the runner
    reports on a device, where the `onnx` package that `audit` reads the graph with is not installed."""
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
    qdq = [n for n in names if n in QDQ_OPS]
    other = [n for n in names if n not in integer and n not in qdq and n not in LAYOUT_OPS]
    quantized = bool(integer or qdq)
    return {"runtime": FAST_PATH, "ops": len(names), "partitions": None,
            "fast": counts(integer + ([] if quantized else other)), "slow": counts(other if quantized else []),
            "edge": counts(qdq), "on_fast_path": not (quantized and other)}


def graph_audit(graph) -> dict:
    """The audit of an onnxruntime-optimised graph (onnx.GraphProto): in a quantized graph the integer kernels
    are fast; a float compute node fed by DequantizeLinear or feeding QuantizeLinear is a QDQ group onnxruntime
    could not fuse (slow: float with a conversion on each side); Q/DQ nodes left are the edge. A float model has
    no slow nodes by definition. On the fast path: nothing slow."""
    producers = {out: node.op_type for node in graph.node for out in node.output}
    consumers: dict = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    quantized = any(node.op_type in QDQ_OPS or is_integer_kernel(node.op_type) for node in graph.node)
    fast, slow, edge = [], [], []
    for node in graph.node:
        op = node.op_type
        if op in QDQ_OPS:
            edge.append(op)
        elif is_integer_kernel(op):
            fast.append(op)
        elif op in LAYOUT_OPS:
            continue
        elif not quantized:
            fast.append(op)
        else:
            fed = any(producers.get(name) == "DequantizeLinear" for name in node.input)
            feeds = any("QuantizeLinear" in consumers.get(out, []) for out in node.output)
            (slow if fed or feeds else fast).append(op)
    slow_counts = counts(slow)
    return {"runtime": FAST_PATH, "ops": len(graph.node), "partitions": None, "fast": counts(fast),
            "slow": slow_counts, "edge": counts(edge), "on_fast_path": not slow_counts}


def audit(path) -> dict:
    """The fast-path audit of a .onnx file: onnxruntime's CPU session at its default optimisation level saves
    the graph it runs (`SessionOptions.optimized_model_filepath`), read with `onnx` (see graph_audit)."""
    ort = _ort()
    import onnx

    with tempfile.TemporaryDirectory() as scratch:
        optimized = os.path.join(scratch, "optimized.onnx")
        options = ort.SessionOptions()
        options.optimized_model_filepath = optimized
        options.log_severity_level = 3
        try:
            ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            graph = onnx.load(optimized).graph
        except Exception as exc:
            raise RunnerError(f"expected {os.path.basename(str(path))} to load in onnxruntime, "
                              f"received {one_line(exc)}") from exc
    return graph_audit(graph)
