"""Fast-path audit: which ops of a model file run on the fast kernels, and which fall off them.

- `.tflite`: loaded in ai-edge-litert's Interpreter, which applies XNNPACK by default. Each DELEGATE node is one
  XNNPACK partition; the original ops it replaced are found by walking back from its outputs to its inputs.
  Ops outside every partition run on TFLite's builtin kernels (for int8 often the reference ones), and every
  extra partition costs a hand-over. The file is on the fast path when it is one partition and nothing
  but the I/O conversions at its edges (QUANTIZE/DEQUANTIZE, SOFTMAX) stays builtin.
- `.onnx`: onnxruntime's CPU session at its default optimisation level saves the graph it runs
  (`SessionOptions.optimized_model_filepath`). In a quantized graph the integer kernels are QLinear*,
  QGemm, MatMulInteger...; a float compute node (Conv, Add, Mul, ...) fed by DequantizeLinear or feeding
  QuantizeLinear is a QDQ group onnxruntime could not fuse: it runs in float with a conversion on each side.
  The file is on the fast path when no such node is left. A float model has no such nodes by definition.

The audit describes the file on *this* machine's runtime build: XNNPACK on ARM or another onnxruntime may
take different ops (benchmarks/runner.py reports the TFLite delegation on the device itself).
"""
from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mobilenet_edge.pipeline.errors import PipelineError

# Builtin ops that only convert at the graph's edges (uint8 I/O, the classifier's softmax): cheap, never split it.
TFLITE_EDGE_OPS = frozenset({"QUANTIZE", "DEQUANTIZE", "SOFTMAX"})
ONNX_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
# Data movement only: neither integer nor float arithmetic worth naming.
ONNX_LAYOUT_OPS = frozenset({"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Shape",
                             "ReorderInput", "ReorderOutput", "Concat", "Pad", "Gather", "Slice"})
ONNX_INTEGER_PREFIXES = ("QLinear", "QGemm", "QAttention", "QEmbed", "NhwcQLinear")
ONNX_INTEGER_OPS = frozenset({"MatMulInteger", "ConvInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul",
                              "MatMulIntegerToFloat", "QuickGelu"})


@dataclass(frozen=True)
class FastPath:
    """What one model file runs on: fast ops by type, the ops that fall off the fast path by type."""

    runtime: str  # "xnnpack" (the LiteRT Interpreter's default delegate) | "onnxruntime-cpu"
    ops: int  # ops in the graph (TFLite: before delegation; ONNX: after onnxruntime's optimisation)
    fast: dict = field(default_factory=dict)  # op type -> count: delegated to XNNPACK | integer kernels | float model
    slow: dict = field(default_factory=dict)  # op type -> count: builtin kernels | float between Q/DQ
    partitions: int | None = None  # TFLite: XNNPACK partitions (1 = one delegated graph)
    edge: dict = field(default_factory=dict)  # TFLite: builtin I/O ops at the edges; ONNX: Q/DQ nodes left

    @property
    def on_fast_path(self) -> bool:
        if self.runtime == "xnnpack":
            return self.partitions == 1 and not self.slow
        return not self.slow

    @property
    def culprits(self) -> list[str]:
        """The op types that fall off the fast path, most frequent first ("HARD_SWISH x19")."""
        return [f"{op} x{n}" for op, n in sorted(self.slow.items(), key=lambda kv: (-kv[1], kv[0]))]

    def to_dict(self) -> dict:
        return {"runtime": self.runtime, "ops": self.ops, "partitions": self.partitions,
                "fast": dict(sorted(self.fast.items())), "slow": dict(sorted(self.slow.items())),
                "edge": dict(sorted(self.edge.items())), "on_fast_path": self.on_fast_path}


def audit(path: Path) -> FastPath:
    """The fast-path audit of a .tflite or .onnx file (see the module docstring)."""
    path = Path(path)
    if path.suffix == ".tflite":
        return audit_tflite(path)
    if path.suffix == ".onnx":
        return audit_onnx(path)
    raise PipelineError(f"expected a .tflite or .onnx file to audit, received {path.name!r}")


def delegated_ops(ops: list[dict]) -> tuple[set[int], int]:
    """Indices of the ops inside XNNPACK partitions, and the number of partitions.

    `ops`: Interpreter._get_ops_details() after allocate_tensors(): the original ops, then one DELEGATE node
    per partition whose inputs/outputs are the partition's boundary tensors.
    """
    original = [op for op in ops if op["op_name"] != "DELEGATE"]
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    producer = {int(t): op["index"] for op in original for t in op["outputs"]}
    inputs_of = {op["index"]: [int(t) for t in op["inputs"] if t >= 0] for op in original}
    inside: set[int] = set()
    for node in delegates:
        boundary = {int(t) for t in node["inputs"]}
        stack = [int(t) for t in node["outputs"]]
        while stack:
            tensor = stack.pop()
            index = producer.get(tensor)
            if tensor in boundary or index is None or index in inside:
                continue
            inside.add(index)
            stack.extend(inputs_of[index])
    return inside, len(delegates)


def tflite_fast_path(ops: list[dict]) -> FastPath:
    """The audit from an Interpreter's op list (also what benchmarks/runner.py computes on a device)."""
    inside, partitions = delegated_ops(ops)
    original = [op for op in ops if op["op_name"] != "DELEGATE"]
    fast = Counter(op["op_name"] for op in original if op["index"] in inside)
    builtin = Counter(op["op_name"] for op in original if op["index"] not in inside)
    edge = {op: n for op, n in builtin.items() if op in TFLITE_EDGE_OPS}
    slow = {op: n for op, n in builtin.items() if op not in TFLITE_EDGE_OPS}
    return FastPath("xnnpack", len(original), dict(fast), slow, partitions, edge)


def audit_tflite(path: Path) -> FastPath:
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()  # XNNPACK partitions the graph here
        ops = interpreter._get_ops_details()  # private, but the only view of the delegated graph in Python
    except Exception as exc:
        raise PipelineError(f"expected {path.name} to load in ai-edge-litert, received {type(exc).__name__}: {exc}") from exc
    return tflite_fast_path(ops)


def _is_integer_kernel(op_type: str) -> bool:
    return op_type.startswith(ONNX_INTEGER_PREFIXES) or op_type in ONNX_INTEGER_OPS


def onnx_fast_path(graph) -> FastPath:
    """The audit of an onnxruntime-optimised ONNX graph (onnx.GraphProto)."""
    producers = {out: node.op_type for node in graph.node for out in node.output}
    consumers: dict[str, list[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    quantized = any(node.op_type in ONNX_QDQ_OPS or _is_integer_kernel(node.op_type) for node in graph.node)
    fast, slow, edge = Counter(), Counter(), Counter()
    for node in graph.node:
        op = node.op_type
        if op in ONNX_QDQ_OPS:
            edge[op] += 1
        elif _is_integer_kernel(op):
            fast[op] += 1
        elif op in ONNX_LAYOUT_OPS:
            continue
        elif not quantized:
            fast[op] += 1
        else:
            fed = any(producers.get(name) == "DequantizeLinear" for name in node.input)
            feeds = any("QuantizeLinear" in consumers.get(out, []) for out in node.output)
            (slow if fed or feeds else fast)[op] += 1
    return FastPath("onnxruntime-cpu", len(graph.node), dict(fast), dict(slow), None, dict(edge))


def audit_onnx(path: Path) -> FastPath:
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as scratch:
        optimized = Path(scratch) / "optimized.onnx"
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(optimized)
        options.log_severity_level = 3
        try:
            ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            graph = onnx.load(str(optimized)).graph
        except Exception as exc:
            raise PipelineError(f"expected {path.name} to load in onnxruntime, received {type(exc).__name__}: {exc}") from exc
    return onnx_fast_path(graph)


def audit_entries(folder: Path, entries: list[dict]) -> list[dict]:
    """Manifest artifact entries with a `fast_path` record each (the audit of the file beside them)."""
    return [{**entry, "fast_path": audit(Path(folder) / entry["file"]).to_dict()} for entry in entries]
