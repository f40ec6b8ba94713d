"""Stage 4a — convert to TFLite: fp32, fp16, dynamic-range and full int8.

Full int8 defaults to uint8 input/output because the Android Task Library rejects int8 input tensors,
and to per-channel weights because MobileNet V1's depthwise filters have very different ranges per
channel: per-tensor scales (an option, to show it) collapse its accuracy.
"""
from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilenet_edge.calibration.representative import CalibrationSet
from mobilenet_edge.pipeline.artifacts import sha256_file, write_bytes
from mobilenet_edge.pipeline.config import QuantConfig
from mobilenet_edge.pipeline.errors import PipelineError, ToolError

log = logging.getLogger(__name__)

TFLITE_PRECISIONS = ("fp32", "fp16", "dynamic", "int8")


@dataclass(frozen=True)
class Artifact:
    """One written model file and what a runtime needs to know to feed it."""

    path: Path
    format: str  # tflite | onnx
    precision: str  # fp32 | fp16 | dynamic | int8
    inputs: tuple[dict, ...]
    outputs: tuple[dict, ...]
    per_channel: bool | None = None
    extra: tuple[tuple[str, object], ...] = ()

    def to_dict(self) -> dict:
        return {
            "file": self.path.name, "format": self.format, "precision": self.precision,
            "bytes": self.path.stat().st_size, "sha256": sha256_file(self.path),
            "per_channel": self.per_channel, "inputs": list(self.inputs), "outputs": list(self.outputs),
            **dict(self.extra),
        }


def tflite_file_name(variant_name: str, precision: str, per_channel: bool = True) -> str:
    suffix = precision if per_channel or precision != "int8" else "int8_per_tensor"
    return f"{variant_name}_{suffix}.tflite"


def batch_of_one(model, hard_swish: str = "fused"):
    """The same network with its batch fixed at 1, as an app runs it.

    With a dynamic batch, Keras's classifier Reshape becomes Shape/StridedSlice/Pack ops that split the
    graph for XNNPACK (tflite-runtime 2.14 then delegates nothing); with batch 1 the graph is one partition.
    `hard_swish="split"` writes V3's hard-swish in ops XNNPACK runs in int8 (see pipeline.convert.int8_graph).
    """
    import keras

    from mobilenet_edge.pipeline.convert.int8_graph import int8_clone_function

    # A stable input name also keeps the file byte-identical whatever Keras numbered its tensors.
    fixed = keras.models.clone_model(model, input_tensors=keras.Input(model.input_shape[1:], batch_size=1, name="input"),
                                     clone_function=int8_clone_function(hard_swish))
    fixed.set_weights(model.get_weights())
    return fixed


def _converter(model, precision: str, calib: CalibrationSet | None, quant: QuantConfig):
    import tensorflow as tf

    # Only int8 needs the split hard-swish: XNNPACK runs the fused HARD_SWISH in float (one op is cheaper).
    hard_swish = quant.hard_swish if precision == "int8" else "fused"
    converter = tf.lite.TFLiteConverter.from_keras_model(batch_of_one(model, hard_swish))
    if precision == "fp32":
        return converter
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        if calib is None:
            raise PipelineError("expected calibration samples for full-int8 conversion, received none")
        converter.representative_dataset = calib.batches
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io = {"uint8": tf.uint8, "int8": tf.int8, "float": tf.float32}[quant.io_dtype]
        converter.inference_input_type = io
        converter.inference_output_type = io
        # Private flag, but the only switch the converter offers; see tensorflow/lite/python/lite.py.
        converter._experimental_disable_per_channel = not quant.per_channel
    return converter


def tflite_bytes(model, precision: str, calib: CalibrationSet | None = None,
                 quant: QuantConfig = QuantConfig()) -> bytes:
    """Convert a Keras model to .tflite bytes at `precision` (fp32 | fp16 | dynamic | int8)."""
    if precision not in TFLITE_PRECISIONS:
        raise PipelineError(f"expected a TFLite precision in {TFLITE_PRECISIONS}, received {precision!r}")
    converter = _converter(model, precision, calib, quant)
    with contextlib.redirect_stdout(io.StringIO()) as noise:  # Keras's export prints every captured tensor
        try:
            data = converter.convert()
        except Exception as exc:  # the MLIR converter's own failure, not the user's input
            first = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise ToolError(f"expected TensorFlow's TFLite converter to convert the {precision} model, "
                            f"received {type(exc).__name__}: {first}") from exc
    log.debug("converter output: %s", noise.getvalue())
    return data


def tensor_specs(details: list[dict]) -> tuple[dict, ...]:
    """Interpreter tensor details -> the manifest's tensor description."""
    specs = []
    for d in details:
        scale, zero_point = d["quantization"]
        quantized = np.issubdtype(d["dtype"], np.integer) and scale != 0
        specs.append({
            "name": d["name"], "shape": [int(s) for s in d["shape"]], "dtype": np.dtype(d["dtype"]).name,
            "scale": float(scale) if quantized else None, "zero_point": int(zero_point) if quantized else None,
        })
    return tuple(specs)


def check_tflite(path: Path, sample: np.ndarray) -> tuple[tuple[dict, ...], tuple[dict, ...]]:
    """Load `path` with ai-edge-litert, run one float `sample` through it, return (inputs, outputs) specs."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]
        interpreter.set_tensor(inp["index"], quantize_input(sample[None], inp))
        interpreter.invoke()
        out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    except Exception as exc:
        raise ToolError(f"expected {path.name} to load and run in ai-edge-litert, received {type(exc).__name__}: {exc}") from exc
    if not np.all(np.isfinite(out.astype(np.float32))):
        raise PipelineError(f"expected finite outputs from {path.name}, received NaN/inf")
    return tensor_specs(interpreter.get_input_details()), tensor_specs(interpreter.get_output_details())


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float model input -> the tensor's dtype, through its quantization parameters if any."""
    dtype = np.dtype(detail["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize_output(y: np.ndarray, detail: dict) -> np.ndarray:
    if not np.issubdtype(np.dtype(detail["dtype"]), np.integer):
        return y.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return (y.astype(np.float32) - zero_point) * scale


def convert_tflite(model, precision: str, out_path: Path, calib: CalibrationSet | None = None,
                   quant: QuantConfig = QuantConfig(), add_metadata=None, data: bytes | None = None,
                   extra: tuple = ()) -> Artifact:
    """Write one .tflite atomically, prove it runs, and describe it.

    `add_metadata`: optional `bytes -> bytes` that embeds TFLite metadata (labels, normalisation).
    `data`: already converted bytes (e.g. a selectively quantized model) instead of converting here.
    """
    log.info("converting %s to TFLite %s", out_path.stem, precision)
    if data is None:
        data = tflite_bytes(model, precision, calib, quant)
    if add_metadata is not None:
        data = add_metadata(data)
    sample = calib.head(1)[0] if calib is not None else np.zeros(model.input_shape[1:], np.float32)
    write_bytes(out_path, data)
    try:
        inputs, outputs = check_tflite(out_path, sample)
    except PipelineError:
        out_path.unlink(missing_ok=True)  # a model that cannot run must not look finished
        raise
    per_channel = quant.per_channel if precision == "int8" else None
    extra = ((("io_dtype", inputs[0]["dtype"] if inputs[0]["dtype"] != "float32" else "float"),) if precision == "int8" else ()) + tuple(extra)
    return Artifact(out_path, "tflite", precision, inputs, outputs, per_channel, extra)
