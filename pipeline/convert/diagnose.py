"""Int8 diagnosis: which layers lose the most to quantization, and what keeping them in float buys.

Uses TensorFlow's quantization debugger (tf.lite.experimental.QuantizationDebugger). Per layer it
compares the int8 output with the float output on calibration images; RMSE divided by the layer's
quantization step (rmse/scale) is the comparable figure: ~0.29 is pure rounding noise (1/sqrt(12)),
values well above it point at a layer whose range is badly served by 8 bits.
"""
from __future__ import annotations

import contextlib
import csv
import io
import itertools
import logging
import math
import re
from dataclasses import dataclass

from mobilenet_edge.calibration.representative import CalibrationSet
from mobilenet_edge.pipeline.config import QuantConfig
from mobilenet_edge.pipeline.convert.tflite import batch_of_one

log = logging.getLogger(__name__)

ROUNDING_NOISE = 1 / math.sqrt(12)
DEBUG_SAMPLES = 32


@dataclass(frozen=True)
class Diagnosis:
    worst_layers: tuple[dict, ...]  # {"tensor", "op", "rmse/scale", "scale"}, worst first

    def to_dict(self) -> dict:
        return {"metric": "rmse/scale", "rounding_noise": ROUNDING_NOISE, "worst_layers": list(self.worst_layers)}


def _converter(model, calib: CalibrationSet, quant: QuantConfig, allow_float: bool):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(batch_of_one(model, quant.hard_swish))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _limited(calib)
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if allow_float:  # layers kept in float need float kernels
        ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
    converter.target_spec.supported_ops = ops
    io_type = {"uint8": tf.uint8, "int8": tf.int8, "float": tf.float32}[quant.io_dtype]
    converter.inference_input_type = converter.inference_output_type = io_type
    converter._experimental_disable_per_channel = not quant.per_channel
    return converter


def _limited(calib: CalibrationSet):
    return lambda: itertools.islice(calib.batches(), DEBUG_SAMPLES)


def diagnose_int8(model, calib: CalibrationSet, quant: QuantConfig = QuantConfig(), top: int = 10) -> Diagnosis:
    """Rank the quantized layers by rmse/scale on (up to 32) calibration samples."""
    import tensorflow as tf

    with contextlib.redirect_stdout(io.StringIO()):  # the converter inside prints every captured tensor
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=_converter(model, calib, quant, allow_float=False), debug_dataset=_limited(calib))
        debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    dump.seek(0)
    rows = []
    weighted = {layer.name for layer in model.layers
                if layer.weights and layer.__class__.__name__ != "BatchNormalization"}
    for row in csv.DictReader(dump):
        scale = float(row["scale"])
        if scale > 0:
            rows.append({"layer": layer_of(row["tensor_name"], weighted),
                         "tensor": row["tensor_name"], "op": row["op_name"], "scale": scale,
                         "rmse/scale": math.sqrt(float(row["mean_squared_error"])) / scale})
    rows.sort(key=lambda r: -r["rmse/scale"])
    return Diagnosis(tuple(rows[:top]))


def layer_of(tensor_name: str, weighted: set[str]) -> str:
    """The Keras layer (with weights) a TFLite tensor comes from: the longest such layer name that begins a
    segment of the tensor's name ('model/conv_dw_1_relu/Relu6;...' -> conv_dw_1, the conv that BatchNorm and
    ReLU were fused into), for any architecture; the tensor's own first name when none does."""
    best = ""
    for segment in re.split(r"[/;]", tensor_name):
        for name in weighted:
            if len(name) > len(best) and (segment == name or segment.startswith(name + "_")):
                best = name
    return best or tensor_name.split(";")[0]


def selective_int8(model, calib: CalibrationSet, diagnosis: Diagnosis, keep_float: int,
                   quant: QuantConfig = QuantConfig()) -> bytes:
    """Full-int8 model with the `keep_float` worst layers of `diagnosis` left in float."""
    import tensorflow as tf

    nodes = [layer["tensor"] for layer in diagnosis.worst_layers[:keep_float]]
    # fully_quantize keeps integer I/O; the debugger's quantizer offers int8 (not uint8) for it.
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes, fully_quantize=True)
    with contextlib.redirect_stdout(io.StringIO()):
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=_converter(model, calib, quant, allow_float=True), debug_dataset=_limited(calib),
            debug_options=options)
        return debugger.get_nondebug_quantized_model()
