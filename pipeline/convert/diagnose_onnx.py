"""Int8 diagnosis for ONNX: which nodes lose the most to QDQ quantization, and the float islands that keep them.

The counterpart of diagnose.py (TensorFlow's quantization debugger) for the ONNX int8 file. onnxruntime's
qdq_loss_debug saves every activation of the float and the QDQ model on (up to 32) calibration samples and
matches them by tensor name; create_weight_matching pairs each weight with its dequantized copy. A node's figure
is the SQNR (dB, lower is worse) of its own quantization: its output before QuantizeLinear against after
DequantizeLinear, combined with its weights' SQNR (the noise powers add). Each uint8 bit is ~6 dB; plain
rounding of a well-spread tensor is ~40-50 dB.

The QDQ graph folds a Conv's Relu/Clip into the Conv's output range, so the tensor before QuantizeLinear is
the *unclipped* Conv output: it is clipped to the quantized range before comparing (otherwise every ReLU
would rank as a 3 dB disaster). For the same reason keeping a Conv in float means keeping its activation
(Relu, Clip, V3's hard-swish Add/Clip/Mul/Mul) and the pass-through nodes after it in float too: `island`.
"""
from __future__ import annotations

import itertools
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilenet_edge.calibration.representative import CalibrationSet

log = logging.getLogger(__name__)

DEBUG_SAMPLES = 32
# Element-wise ops that quantize_static folds into (or keeps beside) the producer's output range.
ACTIVATIONS = frozenset({"Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid", "LeakyRelu"})
ARITHMETIC = frozenset({"Add", "Sub", "Mul", "Div"})  # part of an activation when its other inputs are constants
PASS_THROUGH = frozenset({"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity"})


@dataclass(frozen=True)
class OnnxDiagnosis:
    worst_nodes: tuple[dict, ...]  # {"node", "op", "tensor", "sqnr_db", "island": [node names]}, worst first

    def nodes_to_exclude(self, k: int) -> tuple[str, ...]:
        """The float islands of the `k` worst nodes, for convert_onnx_int8(nodes_to_exclude=...)."""
        names = itertools.chain.from_iterable(n["island"] for n in self.worst_nodes[:k])
        return tuple(dict.fromkeys(names))

    def to_dict(self) -> dict:
        return {"metric": "sqnr_db", "worst_nodes": list(self.worst_nodes)}


def _graph_index(graph):
    """(producer of each tensor, consumers of each tensor, constant tensor names) of an ONNX graph."""
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    constants = {i.name for i in graph.initializer} | {o for n in graph.node if n.op_type == "Constant"
                                                       for o in n.output}
    return producer, consumers, constants


def island(graph, anchor) -> list[str]:
    """`anchor` and the nodes that must stay float with it: its activation and the pass-through nodes after it.

    A consumer joins when it is an activation, a pass-through node, or arithmetic whose non-constant inputs
    all come from the island (V3's hard-swish x * relu6(x + 3) / 6 joins whole; a residual Add does not).
    """
    _, consumers, constants = _graph_index(graph)
    names, tensors = [anchor.name], set(anchor.output)
    frontier = list(anchor.output)
    while frontier:
        for node in consumers.get(frontier.pop(), []):
            inputs = [i for i in node.input if i and i not in constants]
            joins = node.op_type in ACTIVATIONS | PASS_THROUGH or (
                node.op_type in ARITHMETIC and all(i in tensors for i in inputs))
            if joins and node.name not in names and inputs and inputs[0] in tensors:
                names.append(node.name)
                tensors.update(node.output)
                frontier.extend(node.output)
    return names


def anchor_of(graph, tensor: str):
    """The node whose float island contains the producer of `tensor` (a Relu's output -> the Conv before it)."""
    producer, _, constants = _graph_index(graph)
    start = producer[tensor]
    node = start
    while node.op_type in ACTIVATIONS | ARITHMETIC | PASS_THROUGH:
        inputs = [i for i in node.input if i and i not in constants and i in producer]
        if not inputs:
            break
        node = producer[inputs[0]]
    return node if start.name in island(graph, node) else start


def quantized_ranges(qdq_model) -> dict[str, tuple[float, float]]:
    """The float range each QuantizeLinear of a QDQ model represents, by the name of its input tensor."""
    from onnx import numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in qdq_model.graph.initializer}
    ranges = {}
    for node in qdq_model.graph.node:
        if node.op_type == "QuantizeLinear" and len(node.input) > 2 and node.input[2] in values:
            scale, zero = values[node.input[1]].astype(np.float64), values[node.input[2]]
            info = np.iinfo(zero.dtype)
            zero = zero.astype(np.int64)  # uint8 arithmetic would wrap
            ranges[node.input[0]] = (float(np.min((info.min - zero) * scale)), float(np.max((info.max - zero) * scale)))
    return ranges


def combined_sqnr_db(*sqnrs: float) -> float:
    """Independent noises add in power: 40 dB and 40 dB make 37 dB."""
    noise = sum(10 ** (-s / 10) for s in sqnrs)
    return math.inf if noise == 0 else -10 * math.log10(noise)


def _samples(calib: CalibrationSet, name: str):
    return ({name: s[None].astype(np.float32)} for s in itertools.islice(calib.iter_samples(), DEBUG_SAMPLES))


def diagnose_onnx_int8(fp32_path: Path, calib: CalibrationSet, per_channel: bool = True,
                       top: int = 10) -> OnnxDiagnosis:
    """Rank the quantized nodes of the int8 ONNX file (as `make onnx-int8` makes it) by SQNR, worst first."""
    import onnx
    from onnxruntime.quantization import qdq_loss_debug as debug

    from mobilenet_edge.pipeline.convert.onnx import INPUT_NAME, convert_onnx_int8, preprocess

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        pre = preprocess(fp32_path, folder / "preprocessed.onnx")  # the graph quantize_static names nodes in
        qdq = convert_onnx_int8(fp32_path, folder / "qdq.onnx", calib, per_channel).path
        for model in (pre, qdq):
            debug.modify_model_output_intermediate_tensors(str(model), str(folder / f"{model.stem}_saving.onnx"))
        floats = debug.collect_activations(str(folder / "preprocessed_saving.onnx"), _samples(calib, INPUT_NAME))
        quantized = debug.collect_activations(str(folder / "qdq_saving.onnx"), _samples(calib, INPUT_NAME))
        matching = debug.create_activation_matching(quantized, floats)
        weights = weight_sqnr(debug.create_weight_matching(str(pre), str(qdq)))
        graph, ranges = onnx.load(str(pre)).graph, quantized_ranges(onnx.load(str(qdq)))
    return OnnxDiagnosis(tuple(rank_nodes(graph, matching, ranges, weights)[:top]))


def weight_sqnr(matching: dict) -> dict[str, float]:
    """SQNR (dB) of each weight against its dequantized copy.

    onnxruntime's compute_weight_error fails on scalars (V3's hard-swish constants 3 and 1/6 are quantized too).
    """
    from onnxruntime.quantization.qdq_loss_debug import compute_signal_to_quantization_noice_ratio as sqnr

    return {name: sqnr(np.atleast_1d(pair["float"]), np.atleast_1d(pair["dequantized"]))
            for name, pair in matching.items()}


def rank_nodes(graph, matching: dict, ranges: dict, weights: dict) -> list[dict]:
    """One row per float island (its worst tensor), worst SQNR first."""
    from onnxruntime.quantization.qdq_loss_debug import compute_signal_to_quantization_noice_ratio as sqnr

    producer, _, _ = _graph_index(graph)
    rows: dict[str, dict] = {}
    for tensor, match in matching.items():
        if tensor not in ranges or tensor not in producer:  # graph inputs/outputs: nothing to keep in float
            continue
        low, high = ranges[tensor]
        before = np.clip(np.concatenate([a.ravel() for a in match["pre_qdq"]]), low, high)
        after = np.concatenate([a.ravel() for a in match["post_qdq"]])
        anchor = anchor_of(graph, tensor)
        own = [weights[i] for i in anchor.input if i in weights]
        db = combined_sqnr_db(sqnr(before, after), *own)
        if anchor.name not in rows or db < rows[anchor.name]["sqnr_db"]:
            rows[anchor.name] = {"node": anchor.name, "op": anchor.op_type, "tensor": tensor,
                                 "sqnr_db": round(db, 3), "island": island(graph, anchor)}
    return sorted(rows.values(), key=lambda r: r["sqnr_db"])


def island_quantization(int8_model, names) -> dict[str, int]:
    """How much of the nodes `names` an int8 file still quantizes: both 0 for a float island.

    weights_dequantized: DequantizeLinear nodes feeding them constants (int8 weights or int32 biases);
    quantized_inside: Q->DQ pairs between two of them. Their input and output edges keep a Q/DQ pair where
    they meet quantized neighbours. onnxruntime quantizes a constant once for all its consumers, so a scalar
    shared with quantized nodes (V3's hard-swish 3 and 1/6, one initializer for every block) stays
    dequantized, as does a tensor that a quantized node reads too.
    """
    producer, _, constants = _graph_index(int8_model.graph)
    inside = [n for n in int8_model.graph.node if n.name in names]
    made_inside = {o for n in inside for o in n.output}
    weights = quantized = 0
    for node in inside:
        for name in node.input:
            dq = producer.get(name)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            source = producer.get(dq.input[0])
            if dq.input[0] in constants:
                weights += 1
            elif source is not None and source.op_type == "QuantizeLinear" and source.input[0] in made_inside:
                quantized += 1
    return {"weights_dequantized": weights, "quantized_inside": quantized}
