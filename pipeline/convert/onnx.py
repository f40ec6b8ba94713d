"""Stage 4b — convert to ONNX: fp32 through tf2onnx, int8 (QDQ, per-channel) with onnxruntime's quantizer.

The int8 model is calibrated on the same samples as the TFLite int8 model so that the two are comparable.
Both files carry the preprocessing contract and the labels in their `metadata_props` (see `metadata_props`),
so that a file copied away from its manifest can still be fed and read (`mobilenet-edge predict` does).
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
from pathlib import Path

import numpy as np

from mobilenet_edge.calibration.representative import CalibrationSet
from mobilenet_edge.pipeline.artifacts import atomic_path, write_bytes
from mobilenet_edge.pipeline.convert.tflite import Artifact
from mobilenet_edge.pipeline.errors import PipelineError, ToolError

log = logging.getLogger(__name__)

INPUT_NAME = "input"
MAX_ABS_DIFF = 1e-4  # fp32 ONNX must match Keras this closely or the export fails
PREPROCESSING_KEY = "preprocessing"  # metadata_props: the manifest's preprocessing record, as JSON
LABELS_KEY = "labels"  # metadata_props: class names in class-index order, one per line


def _specs(values) -> tuple[dict, ...]:
    types = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(int8)": "int8"}
    return tuple({"name": v.name, "shape": [s if isinstance(s, int) else -1 for s in v.shape],
                  "dtype": types.get(v.type, v.type), "scale": None, "zero_point": None} for v in values)


def metadata_props(preprocessing: dict, class_names) -> dict[str, str]:
    """The preprocessing contract (the manifest's record) and the labels as ONNX `metadata_props`.

    ONNX has no standard key for either (TFLite has its metadata schema); onnxruntime exposes these as
    `session.get_modelmeta().custom_metadata_map`.
    """
    return {PREPROCESSING_KEY: json.dumps(preprocessing, sort_keys=True), LABELS_KEY: "\n".join(class_names)}


def _set_metadata_props(proto, props: dict[str, str] | None) -> None:
    """Add `props` to the model's metadata_props, replacing same-named keys and keeping the others."""
    if not props:
        return
    import onnx

    onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, **props})


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


def _optimizers():
    """tf2onnx's default graph optimizers, with its Transpose pass able to cross a scalar Add.

    tf2onnx 1.17's Add handler takes `max(shape)` of the constant after a bias-free Conv; for a scalar
    (MobileNet V3's hard-sigmoid `x + 3`) that raises, the whole Transpose pass is dropped and the V3 graph
    keeps ~100 NHWC<->NCHW Transposes (onnx/tensorflow-onnx#1729). A scalar broadcasts exactly like a
    (1,)-shaped constant, which the handler does take.
    """
    from collections import OrderedDict

    from tf2onnx import optimizer
    from tf2onnx.optimizer.transpose_optimizer import TransposeOptimizer

    class ScalarSafeTransposeOptimizer(TransposeOptimizer):
        def _add_handler(self, trans, node):
            if node.inputs[1].is_const():
                value = node.inputs[1].get_tensor_value(as_list=False)
                if value.ndim == 0:
                    node.inputs[1].set_tensor_value(value.reshape(1))
            return super()._add_handler(trans, node)

    return OrderedDict((name, ScalarSafeTransposeOptimizer if cls is TransposeOptimizer else cls)
                       for name, cls in optimizer._get_optimizers().items())


def convert_onnx(model, out_path: Path, samples: np.ndarray, opset: int = 17,
                 metadata: dict[str, str] | None = None) -> Artifact:
    """Export fp32 ONNX with a dynamic batch axis, check the graph, compare with Keras on `samples`.

    `metadata`: string key/values (`metadata_props(...)`) stored in the file's metadata_props.
    """
    import onnx
    import tensorflow as tf
    import tf2onnx

    side = model.input_shape[1]
    log.info("converting %s to ONNX (opset %d)", out_path.stem, opset)
    spec = [tf.TensorSpec([None, side, side, 3], tf.float32, name=INPUT_NAME)]
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset, optimizers=_optimizers())
        _set_metadata_props(proto, metadata)
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        raise ToolError(f"expected tf2onnx to export a valid ONNX model at opset {opset}, received {type(exc).__name__}: {exc}") from exc
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

    def __init__(self, calib: CalibrationSet, name: str):
        self._it = ({name: s[None].astype(np.float32)} for s in calib.iter_samples())  # one sample at a time

    def get_next(self):
        return next(self._it, None)


ACTIVATION_TYPES = {"uint8": "QUInt8", "int8": "QInt8", "int16": "QInt16"}  # -> onnxruntime's QuantType
CALIBRATE_METHODS = ("MinMax", "Percentile", "Entropy")  # -> onnxruntime's CalibrationMethod


def preprocess(fp32_path: Path, out_path: Path) -> Path:
    """Shape inference and folding, as onnxruntime recommends before quantize_static.

    The int8 conversion and the per-node diagnosis (diagnose_onnx.py) both quantize this graph, so node
    names in `nodes_to_exclude` are this graph's names.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(fp32_path), str(out_path), skip_symbolic_shape=False)
    return out_path


@contextlib.contextmanager
def quiet_calibrator(calibrate_method: str):
    """Keep stdout clean of onnxruntime's Percentile/Entropy calibrators, which print their progress there.

    What they print goes to the debug log; an exception still propagates (with the printed text logged first).
    """
    if calibrate_method == "MinMax":
        yield
        return
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        if buffer.getvalue().strip():
            log.debug("onnxruntime %s calibrator: %s", calibrate_method, buffer.getvalue().strip())


def convert_onnx_int8(fp32_path: Path, out_path: Path, calib: CalibrationSet, per_channel: bool = True,
                      metadata: dict[str, str] | None = None, activations: str = "uint8",
                      calibrate_method: str = "MinMax", nodes_to_exclude: tuple[str, ...] = ()) -> Artifact:
    """Static QDQ int8 (7-bit-range int8 weights per channel, uint8 activations) from the fp32 ONNX model.

    `metadata` is (re)written into the int8 file's metadata_props: the fp32 file may predate it.
    `activations`: uint8 (default), int8 or int16. onnxruntime's x86 build fuses QDQ Add, Mul and the Conv that
    shares their input into integer kernels (QLinearAdd, QLinearMul, QLinearConv) only for uint8 activations; with
    int8 ones V2's residual Adds and V3's hard-swish/SE Muls stay float between DequantizeLinear/QuantizeLinear and
    drag ~40 % of the Convs with them (V3-Small 224: 25 of 54 Convs float, 3x slower than fp32). int16 (16x8) is
    the accuracy-budget search's trial; it runs on onnxruntime's reference path.
    `calibrate_method` (MinMax | Percentile | Entropy) and `nodes_to_exclude` (kept in float) are the other knobs
    of that search (pipeline/budget/); the defaults are `make onnx-int8`.
    """
    if activations not in ACTIVATION_TYPES:
        raise PipelineError(f"expected ONNX activations among {', '.join(ACTIVATION_TYPES)}, received {activations!r}")
    if calibrate_method not in CALIBRATE_METHODS:
        raise PipelineError(f"expected an ONNX calibrate method among {', '.join(CALIBRATE_METHODS)}, "
                            f"received {calibrate_method!r}")
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    log.info("quantizing %s to ONNX int8 (QDQ, %d samples)", fp32_path.name, len(calib))
    with tempfile.TemporaryDirectory() as scratch, atomic_path(out_path) as tmp:
        pre = preprocess(fp32_path, Path(scratch) / "preprocessed.onnx")
        with quiet_calibrator(calibrate_method):
            quantize_static(
                str(pre), str(tmp), _Reader(calib, INPUT_NAME),
                quant_format=QuantFormat.QDQ, per_channel=per_channel,
                activation_type=getattr(QuantType, ACTIVATION_TYPES[activations]), weight_type=QuantType.QInt8,
                calibrate_method=getattr(CalibrationMethod, calibrate_method), nodes_to_exclude=list(nodes_to_exclude),
                # 16-bit activations need the com.microsoft Q/DQ ops (ONNX's own take int16 only from opset 21).
                extra_options={"UseQDQContribOps": True} if activations == "int16" else {},
                # 7-bit weights: on x86 without VNNI onnxruntime's int8 kernels (VPMADDUBSW) saturate 16-bit sums;
                # measured on MobileNet 0.25/64: top-1 agreement with float 94.6 % -> 99.0 % on those kernels, the
                # same 99 % as the simulated graph, and no latency cost (U8U8 reached 99.4 % but ran 25 % slower).
                reduce_range=True,
            )
        if metadata:
            proto = onnx.load(str(tmp))
            _set_metadata_props(proto, metadata)
            onnx.save(proto, str(tmp))
        try:
            out = run_session(session(tmp), calib.head(1))
        except Exception as exc:
            raise ToolError(f"expected the int8 ONNX model to run in onnxruntime, received {type(exc).__name__}: {exc}") from exc
        if not np.all(np.isfinite(out)):
            raise PipelineError("expected finite outputs from the int8 ONNX model, received NaN/inf")
    sess = session(out_path)
    knobs = tuple((k, v) for k, v, default in (("calibrate_method", calibrate_method, "MinMax"),
                                               ("keep_float", list(nodes_to_exclude), [])) if v != default)
    return Artifact(out_path, "onnx", "int8", _specs(sess.get_inputs()), _specs(sess.get_outputs()),
                    per_channel=per_channel, extra=(("quant_format", "QDQ"), ("reduce_range", True),
                                                    ("activation_type", activations)) + knobs)
