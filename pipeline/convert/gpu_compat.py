"""Android GPU delegate compatibility: which ops of a .tflite the GPU delegate would not take, and why.

Two sources, both recorded:

1. LiteRT's model analyzer with its GPU check (`tf.lite.experimental.Analyzer.analyze(..., gpu_compatibility=True)`;
   the same C++ analyzer ships in ai-edge-litert, which returns its text instead of printing it). Its
   `GPU COMPATIBILITY WARNING: ...` lines are parsed. In the builds pinned here (TensorFlow 2.21, ai-edge-litert
   2.3) the check is a no-op: LiteRT's model_analyzer.cc no longer calls the per-op check and declares every
   model compatible, a Flex op and REVERSE_V2 included (tests/test_gpu_compat.py keeps that fact checked, so an
   upgrade that restores it is noticed).
2. So the verdict comes from `GPU_RULES` below: the op types and options the GPU delegate's model builder
   accepts (its compatibility rules, for the ops a classifier can contain), read from the flatbuffer with the
   schema that ships with ai-edge-litert. Anything not listed is reported as falling back to the CPU.

A file is `compatible` when every op is taken. The GPU delegate runs float (fp16 on the device) and also takes
int8 files by dequantizing their weights; what falls back runs on the CPU with a copy at each border.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from mobilenet_edge.pipeline.errors import PipelineError

log = logging.getLogger(__name__)

ANALYZER_WARNING = re.compile(r"GPU COMPATIBILITY WARNING: (?!Subgraph#)(.*)")
ANALYZER_OP = re.compile(r"^\s*Op#(\d+) (\S+)\(")

# Fused activations the GPU delegate applies inside an op.
GPU_ACTIVATIONS = frozenset({"NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH"})
# Op types the GPU delegate takes without further conditions than their inputs (see `_why_not`).
GPU_OPS = frozenset({
    "ABS", "ADD", "ADD_N", "AVERAGE_POOL_2D", "BATCH_MATMUL", "CAST", "CEIL", "CONCATENATION", "CONV_2D", "COS",
    "CUMSUM", "DENSIFY", "DEPTH_TO_SPACE", "DEPTHWISE_CONV_2D", "DEQUANTIZE", "DIV", "ELU", "EQUAL", "EXP",
    "FLOOR", "FLOOR_DIV", "FLOOR_MOD", "FULLY_CONNECTED", "GATHER", "GELU", "GREATER", "GREATER_EQUAL",
    "HARD_SWISH", "LEAKY_RELU", "LESS", "LESS_EQUAL", "LOG", "LOGICAL_AND", "LOGISTIC", "MAX_POOL_2D", "MAXIMUM",
    "MEAN", "MINIMUM", "MIRROR_PAD", "MUL", "NEG", "NOT_EQUAL", "ONE_HOT", "PACK", "PAD", "PADV2", "POW", "PRELU",
    "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE",
    "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SELECT", "SELECT_V2", "SIGN", "SIN", "SLICE",
    "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SPLIT_V", "SQRT", "SQUARE", "SQUARED_DIFFERENCE", "STRIDED_SLICE",
    "SUB", "SUM", "TANH", "TILE", "TRANSPOSE", "TRANSPOSE_CONV",
})
REDUCTIONS = frozenset({"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"})
CHECKER = "rules of the GPU delegate's model builder (pipeline/convert/gpu_compat.py); LiteRT analyzer parsed too"


@dataclass(frozen=True)
class GpuCompat:
    """The GPU delegate's view of one .tflite: how many ops, and each op it would leave to the CPU."""

    ops: int
    falls_back: tuple[dict, ...] = ()  # {"op": "REVERSE_V2", "index": 3, "why": "..."}
    analyzer: str = "not run"  # "compatible" | "N warnings" | "not run" | "unavailable: ..."
    checker: str = CHECKER

    @property
    def compatible(self) -> bool:
        return not self.falls_back

    def to_dict(self) -> dict:
        return {"ops": self.ops, "compatible": self.compatible, "falls_back": list(self.falls_back),
                "analyzer": self.analyzer, "checker": self.checker}


def gpu_summary(record: dict | None) -> str:
    """'GPU delegate: all 64 ops' / 'falls back: REVERSE_V2, ARG_MAX' / 'GPU: not checked'."""
    if not record:
        return "GPU: not checked"
    if record["compatible"]:
        return f"GPU delegate: all {record['ops']} ops"
    names = list(dict.fromkeys(f["op"] for f in record["falls_back"]))
    return "falls back: " + ", ".join(names)


def _enum_names(enum) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, int)}


def _option(op, name: str):
    options = getattr(op, "builtinOptions", None)
    return getattr(options, name, None) if options is not None else None


def _why_not(name: str, op, tensors, buffers, names) -> str | None:
    """None when the GPU delegate takes this op, else the reason it does not."""
    if name.startswith("Flex") or name == "CUSTOM":
        return f"custom op {name}: the GPU delegate has no kernel for it"
    if name not in GPU_OPS:
        return f"the GPU delegate has no kernel for {name}"
    inputs = [tensors[i] for i in op.inputs if i >= 0] if op.inputs is not None else []
    activation = _option(op, "fusedActivationFunction")
    if activation is not None and names["act"].get(activation, "NONE") not in GPU_ACTIVATIONS:
        return f"fused activation {names['act'].get(activation)} is not applied by the GPU delegate"
    if name == "SOFTMAX" and (_option(op, "beta") or 1.0) != 1.0:
        return "SOFTMAX with beta != 1"
    if name in REDUCTIONS and len(inputs) > 1:
        axes = inputs[1]
        constant = axes.buffer and buffers[axes.buffer].data is not None and len(buffers[axes.buffer].data)
        if not constant or names["type"].get(axes.type) != "INT32":
            return f"{name} needs constant int32 axes"
    if name in ("ADD", "MUL", "SUB", "DIV") and len(inputs) != 2:
        return f"{name} needs two inputs"
    if name == "DEQUANTIZE" and inputs and names["type"].get(inputs[0].type) == "INT16":
        return "DEQUANTIZE of int16 (16x8 files) is not supported"
    if name == "FULLY_CONNECTED" and inputs and inputs[0].buffer and buffers[inputs[0].buffer].data is not None:
        return "FULLY_CONNECTED with a constant input"
    if name == "STRIDED_SLICE" and any(_option(op, m) for m in ("ellipsisMask", "newAxisMask", "shrinkAxisMask")):
        return "STRIDED_SLICE with ellipsis / new-axis / shrink-axis masks"
    return None


def rule_check(model: bytes) -> tuple[int, list[dict]]:
    """(ops, falls_back) of a .tflite by GPU_RULES (every subgraph; indices are within each subgraph)."""
    from ai_edge_litert import schema_py_generated as tfl

    from mobilenet_edge.pipeline.convert.metadata.flatbuffer import unpack

    flat = unpack(model)
    names = {"op": _enum_names(tfl.BuiltinOperator), "act": _enum_names(tfl.ActivationFunctionType),
             "type": _enum_names(tfl.TensorType)}
    count, falls_back = 0, []
    for graph in flat.subgraphs or []:
        for index, op in enumerate(graph.operators or []):
            code = flat.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            name = (code.customCode.decode() if code.customCode else "CUSTOM") if names["op"].get(builtin) == "CUSTOM" \
                else names["op"].get(builtin, str(builtin))
            count += 1
            why = _why_not(name, op, graph.tensors, flat.buffers, names)
            if why:
                falls_back.append({"op": name, "index": index, "why": why})
    return count, falls_back


def analyzer_warnings(path: Path) -> tuple[str, list[dict]]:
    """LiteRT's model analyzer with its GPU check: (verdict, [{"op", "index", "why"}]) from its text."""
    try:
        from ai_edge_litert import _pywrap_analyzer_wrapper as analyzer  # the C++ analyzer; returns its text
    except ImportError as exc:  # pragma: no cover - ai-edge-litert is a dependency
        return f"unavailable: {exc}", []
    text = analyzer.ModelAnalyzer(str(path), True, True)
    found, last_op = [], None
    for line in text.splitlines():
        if (m := ANALYZER_OP.match(line)):
            last_op = (int(m.group(1)), m.group(2))
        elif (w := ANALYZER_WARNING.search(line)) and last_op is not None:
            found.append({"op": last_op[1], "index": last_op[0], "why": w.group(1).strip()})
    if "GPU COMPATIBILITY WARNING" not in text and "compatible with GPU delegate" not in text:
        return "no verdict in its output", found
    return ("compatible" if not found else f"{len(found)} warnings"), found


def gpu_compat(path: Path) -> GpuCompat:
    """The GPU delegate compatibility of one .tflite file (see the module docstring)."""
    path = Path(path)
    if path.suffix != ".tflite":
        raise PipelineError(f"expected a .tflite file for the GPU delegate check, received {path.name!r}")
    ops, falls_back = rule_check(path.read_bytes())
    verdict, warned = analyzer_warnings(path)
    known = {(f["index"], f["op"]) for f in falls_back}
    falls_back += [w for w in warned if (w["index"], w["op"]) not in known]  # whatever the analyzer adds
    if warned or falls_back:
        log.info("%s: GPU delegate would leave %d ops to the CPU", path.name, len(falls_back))
    return GpuCompat(ops, tuple(sorted(falls_back, key=lambda f: f["index"])), verdict)
