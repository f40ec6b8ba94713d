"""Stage 4b — convert to ONNX: fp32 through tf2onnx, int8 (QDQ, per-channel) with onnxruntime's quantizer.

The int8 model is calibrated on the same samples as the TFLite int8 model so that the two are comparable.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from calibration.representative import CalibrationSet
from pipeline.artifacts import atomic_path, write_bytes
from pipeline.convert import Artifact
from pipeline.errors import PipelineError

log = logging.getLogger(__name__)

INPUT_NAME = "input"
MAX_ABS_DIFF = 1e-4  # fp32 ONNX must match Keras this closely or the export fails


def _specs(values) -> tuple[dict, ...]:
    types = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(int8)": "int8"}
    return tuple({"name": v.name, "shape": [s if isinstance(s, int) else -1 for s in v.shape],
                  "dtype": types.get(v.type, v.type), "scale": None, "zero_point": None} for v in values)


def session(path: Path, threads: int = 0):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_session(sess, x: np.ndarray) -> np.ndarray:
    return sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]


def keras_reference(model, samples: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict_on_batch(samples), np.float32)


def convert_onnx(model, out_path: Path, samples: np.ndarray, opset: int = 17) -> Artifact:
    """Export fp32 ONNX with a dynamic batch axis, check the graph, compare with Keras on `samples`."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    side = model.input_shape[1]
    log.info("converting %s to ONNX (opset %d)", out_path.stem, opset)
    spec = [tf.TensorSpec([None, side, side, 3], tf.float32, name=INPUT_NAME)]
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise PipelineError(f"expected tf2onnx to export a valid ONNX model at opset {opset}, received {type(exc).__name__}: {exc}") from None
    write_bytes(out_path, proto.SerializeToString())
    try:
        got = run_session(session(out_path), samples)
        diff = float(np.max(np.abs(got - keras_reference(model, samples))))
        if not diff <= MAX_ABS_DIFF:
            raise PipelineError(f"expected ONNX outputs within {MAX_ABS_DIFF} of Keras, received max |Δ| = {diff:.3g}")
    except Exception:
        out_path.unlink(missing_ok=True)
        raise
    sess = session(out_path)
    return Artifact(out_path, "onnx", "fp32", _specs(sess.get_inputs()), _specs(sess.get_outputs()),
                    extra=(("opset", opset), ("max_abs_diff_vs_keras", diff)))


class _Reader:
    """onnxruntime CalibrationDataReader over the shared calibration samples."""

    def __init__(self, samples: np.ndarray, name: str):
        self._it = iter([{name: s[None].astype(np.float32)} for s in samples])

    def get_next(self):
        return next(self._it, None)


def convert_onnx_int8(fp32_path: Path, out_path: Path, calib: CalibrationSet, per_channel: bool = True) -> Artifact:
    """Static QDQ int8 (int8 weights per channel, int8 activations) from the fp32 ONNX model."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    log.info("quantizing %s to ONNX int8 (QDQ, %d samples)", fp32_path.name, len(calib.samples))
    with tempfile.TemporaryDirectory() as scratch, atomic_path(out_path) as tmp:
        pre = Path(scratch) / "preprocessed.onnx"  # shape inference + folding, as ORT recommends
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=False)
        quantize_static(
            str(pre), str(tmp), _Reader(calib.samples, INPUT_NAME),
            quant_format=QuantFormat.QDQ, per_channel=per_channel,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        try:
            out = run_session(session(tmp), calib.samples[:1])
        except Exception as exc:
            raise PipelineError(f"expected the int8 ONNX model to run in onnxruntime, received {type(exc).__name__}: {exc}") from None
        if not np.all(np.isfinite(out)):
            raise PipelineError("expected finite outputs from the int8 ONNX model, received NaN/inf")
    sess = session(out_path)
    return Artifact(out_path, "onnx", "int8", _specs(sess.get_inputs()), _specs(sess.get_outputs()),
                    per_channel=per_channel, extra=(("quant_format", "QDQ"),))
