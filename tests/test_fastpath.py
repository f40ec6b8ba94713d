"""The fast-path audit (pipeline.convert.fastpath): a file that falls off XNNPACK / onnxruntime's integer kernels is
flagged with the op types responsible, one that stays on them is not; the manifest and the report carry it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_v3(tmp_path_factory):
    """V3's activation in a three-layer net (a whole V3 takes minutes to convert here): int8 .tflite files
    with hard-swish fused (HARD_SWISH, builtin kernel) and split (ops XNNPACK runs in int8)."""
    import keras

    from mobilenet_edge.calibration.representative import CalibrationSet
    from mobilenet_edge.pipeline.config import QuantConfig
    from mobilenet_edge.pipeline.convert.tflite import tflite_bytes

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.Activation("hard_swish")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.Activation("hard_swish")(x)
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    samples = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
    calib = CalibrationSet.from_samples(samples, "random", "test", 0, 0)
    folder = tmp_path_factory.mktemp("fastpath")
    files = {"model": model, "samples": samples}
    for form in ("fused", "split"):
        files[form] = folder / f"v3_{form}.tflite"
        files[form].write_bytes(tflite_bytes(model, "int8", calib, QuantConfig(hard_swish=form)))
    return files


def test_split_hard_swish_is_the_same_function(tiny_v3):
    from mobilenet_edge.pipeline.convert.tflite import batch_of_one

    model, x = tiny_v3["model"], tiny_v3["samples"][:1]
    split = batch_of_one(model, "split")
    assert "SplitHardSwish" in {layer.__class__.__name__ for layer in split.layers}
    np.testing.assert_allclose(split.predict_on_batch(x), model.predict_on_batch(x), rtol=1e-5, atol=1e-6)


def test_fused_hard_swish_is_flagged_split_is_not(tiny_v3):
    from mobilenet_edge.pipeline.convert.fastpath import audit

    fused, split = audit(tiny_v3["fused"]), audit(tiny_v3["split"])
    assert not fused.on_fast_path
    assert fused.slow.get("HARD_SWISH", 0) > 0 and fused.partitions > 1
    assert any(c.startswith("HARD_SWISH x") for c in fused.culprits)
    assert split.on_fast_path, split.to_dict()
    assert split.partitions == 1 and split.slow == {}
    assert set(split.edge) <= {"QUANTIZE", "DEQUANTIZE", "SOFTMAX"}


def _tiny_residual_onnx(path: Path) -> None:
    """NHWC input -> Conv 1x1 -> Add(residual) -> Relu: the shape of V2's residual blocks, in a few bytes."""
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [3, 3, 1, 1],
                                np.random.default_rng(0).normal(size=9).astype(np.float32).tolist())
    nodes = [helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["nchw", "w"], ["conv"]),
             helper.make_node("Add", ["conv", "nchw"], ["sum"]),
             helper.make_node("Relu", ["sum"], ["out"])]
    graph = helper.make_graph(nodes, "residual", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 8, 8, 3])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 3, 8, 8])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory):
    from mobilenet_edge.calibration.representative import CalibrationSet
    from mobilenet_edge.pipeline.convert.onnx import convert_onnx_int8

    folder = tmp_path_factory.mktemp("fastpath_onnx")
    fp32 = folder / "fp32.onnx"
    _tiny_residual_onnx(fp32)
    calib = CalibrationSet.from_samples(np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype(np.float32), "random", "t", 0, 0)
    made = {act: convert_onnx_int8(fp32, folder / f"int8_{act}.onnx", calib, activations=act) for act in ("int8", "uint8")}
    return fp32, made


def test_onnx_int8_activations_leave_float_ops_uint8_does_not(tiny_onnx):
    from mobilenet_edge.pipeline.convert.fastpath import audit

    fp32, made = tiny_onnx
    assert audit(fp32).on_fast_path  # a float model has nothing to fall off
    s8, u8 = audit(made["int8"].path), audit(made["uint8"].path)
    assert not s8.on_fast_path and "Add" in s8.slow  # onnxruntime's x86 build has no int8 QLinearAdd fusion
    assert u8.on_fast_path, u8.to_dict()
    assert u8.fast.get("QLinearConv") == 1 and u8.fast.get("QLinearAdd") == 1
    assert dict(made["uint8"].extra)["activation_type"] == "uint8"


def test_manifest_carries_the_audit(tiny_export):
    manifest = json.loads((tiny_export.variant_dir / "manifest.json").read_text())
    audits = {e["file"]: e["fast_path"] for e in manifest["artifacts"]}
    assert all(a["runtime"] in ("xnnpack", "onnxruntime-cpu") for a in audits.values())
    int8 = next(a for f, a in audits.items() if f.endswith("_int8.tflite"))
    assert int8["partitions"] == 1 and int8["on_fast_path"] and int8["fast"].get("CONV_2D", 0) > 0
    onnx_int8 = next(a for f, a in audits.items() if f.endswith("_int8.onnx"))
    assert onnx_int8["on_fast_path"] and onnx_int8["fast"].get("QLinearConv", 0) > 0


def test_report_flags_an_artifact_slower_than_fp32():
    from mobilenet_edge.pipeline.report.fastpath import speed_flags

    def record(file, precision, p50, fast_path=None):
        return {"task": "t", "variant": "v", "file": file, "label": f"TFLite {precision}", "format": "tflite",
                "precision": precision, "reference": False, "keep_float": 0, "latency_p50_ms": {"local": p50},
                "fast_path": fast_path}

    slow = {"runtime": "xnnpack", "slow": {"HARD_SWISH": 19}, "partitions": 20}
    summary = {"records": [record("a_fp32.tflite", "fp32", 1.0), record("a_int8.tflite", "int8", 2.5, slow),
                           record("a_fp16.tflite", "fp16", 0.9)]}
    flags = speed_flags(summary)
    assert [f["file"] for f in flags] == ["a_int8.tflite"]
    assert "HARD_SWISH x19" in flags[0]["off_fast_path"] and flags[0]["speedup"] == pytest.approx(0.4)


def test_readme_int8_table_is_generated_from_the_record():
    from mobilenet_edge.benchmarks import readme
    from mobilenet_edge.benchmarks.int8_speed import RECORD, readme_table

    block = readme.block_text("int8-speed").strip()
    assert block == readme_table(json.loads(RECORD.read_text()))


def _op(index, name, inputs, outputs):
    return {"index": index, "op_name": name, "inputs": np.array(inputs), "outputs": np.array(outputs)}


def test_a_softmax_inside_the_graph_is_off_the_fast_path_one_at_its_output_is_not():
    """Attention (MNv4 Hybrid-M's Mobile MQA) puts SOFTMAX between two BATCH_MATMULs; only the classifier's
    SOFTMAX and the I/O QUANTIZE/DEQUANTIZE are the cheap edge conversions."""
    from mobilenet_edge.benchmarks.runtimes._interpreter import xnnpack_audit

    ops = [_op(0, "QUANTIZE", [0], [1]), _op(1, "CONV_2D", [1, 100], [2]), _op(2, "BATCH_MATMUL", [2, 2], [3]),
           _op(3, "SOFTMAX", [3], [4]), _op(4, "BATCH_MATMUL", [4, 2], [5]), _op(5, "FULLY_CONNECTED", [5, 101], [6]),
           _op(6, "SOFTMAX", [6], [7]), _op(7, "DEQUANTIZE", [7], [8]),
           _op(8, "DELEGATE", [1, 100], [2]), _op(9, "DELEGATE", [5, 101], [6])]  # CONV_2D and FULLY_CONNECTED
    audit = xnnpack_audit(ops)
    assert audit["slow"] == {"BATCH_MATMUL": 2, "SOFTMAX": 1}
    assert audit["edge"] == {"QUANTIZE": 1, "SOFTMAX": 1, "DEQUANTIZE": 1}
    assert audit["partitions"] == 2 and not audit["on_fast_path"]


def test_the_mobile_mqa_record_names_the_ops_that_keep_hybrid_m_out():
    """docs/mobilenet-v4.md's finding comes from benchmarks/mqa_fastpath.py's record, not from hand-typed names."""
    from mobilenet_edge.benchmarks import mqa_fastpath

    record = json.loads(mqa_fastpath.RECORD.read_text())
    int8 = [r for r in record["rows"] if r["format"] == "tflite-int8"]
    assert int8 and not int8[0]["on_fast_path"] and int8[0]["slow"]
    assert record["finding"] == mqa_fastpath.finding(record["rows"])
