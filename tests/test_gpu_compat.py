"""Android GPU delegate compatibility (pipeline.convert.gpu_compat): an op the GPU delegate lacks, made on purpose,
is reported with its reason; a plain conv net is fully taken; the manifest, report and android README carry it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def gpu_models(tmp_path_factory):
    """Two tiny float .tflite files: a conv net the GPU delegate takes whole, and the same with REVERSE_V2 and
    ARG_MAX (no GPU kernel for either) in the middle."""
    import keras
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("gpu")
    keras.utils.set_random_seed(0)
    files = {}
    for name, odd in (("plain", False), ("odd", True)):
        inputs = keras.Input((16, 16, 3), batch_size=1)
        x = keras.layers.Conv2D(4, 3, activation="relu6")(inputs)
        x = keras.layers.Activation("hard_swish")(x)
        if odd:
            x = keras.layers.Lambda(lambda t: tf.reverse(t, axis=[2]))(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        if odd:
            x = keras.layers.Lambda(lambda t: tf.cast(tf.math.argmax(t, axis=-1), tf.float32)[:, None] * t)(x)
        outputs = keras.layers.Dense(3, activation="softmax")(x)
        files[name] = folder / f"{name}.tflite"
        files[name].write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, outputs)).convert())
    return files


def test_op_without_gpu_kernel_is_reported(gpu_models):
    from mobilenet_edge.pipeline.convert.gpu_compat import gpu_compat, gpu_summary

    record = gpu_compat(gpu_models["odd"]).to_dict()
    assert not record["compatible"]
    fallen = {f["op"]: f["why"] for f in record["falls_back"]}
    assert set(fallen) == {"REVERSE_V2", "ARG_MAX"}, record
    assert "no kernel for REVERSE_V2" in fallen["REVERSE_V2"]
    assert gpu_summary(record) == "falls back: REVERSE_V2, ARG_MAX"


def test_plain_conv_net_is_taken_whole(gpu_models):
    from mobilenet_edge.pipeline.convert.gpu_compat import gpu_compat, gpu_summary

    record = gpu_compat(gpu_models["plain"]).to_dict()
    assert record["compatible"] and record["falls_back"] == []
    assert gpu_summary(record) == f"GPU delegate: all {record['ops']} ops"


def test_litert_analyzer_gpu_check_is_still_a_no_op(gpu_models):
    """LiteRT's analyzer declares the REVERSE_V2 / ARG_MAX file compatible (its GPU check is not called in these
    builds); when an upgrade restores it, its warnings join the record and this test says so."""
    from mobilenet_edge.pipeline.convert.gpu_compat import analyzer_warnings

    verdict, warned = analyzer_warnings(gpu_models["odd"])
    assert (verdict, warned) == ("compatible", []), "the analyzer's GPU check works again: trust it, update the docs"


def test_manifest_and_report_carry_gpu_compat(tiny_export):
    from mobilenet_edge.pipeline.android import gpu_lines
    from mobilenet_edge.pipeline.report.fastpath import fast_path_table

    manifest = json.loads(Path(tiny_export.manifest).read_text())
    tflite = [a for a in manifest["artifacts"] if a["format"] == "tflite"]
    assert tflite and all(a["gpu"]["compatible"] for a in tflite), [a.get("gpu") for a in tflite]
    assert all("gpu" not in a for a in manifest["artifacts"] if a["format"] == "onnx")
    fp16 = next(a for a in tflite if a["precision"] == "fp16")
    assert gpu_lines([fp16])[2] == f"- `{fp16['file']}`: GPU delegate: all {fp16['gpu']['ops']} ops"
    summary = {"records": [{"reference": False, "fast_path": fp16["fast_path"], "gpu": fp16["gpu"], "format": "tflite",
                            "variant": "v", "label": "fp16", "file": fp16["file"], "task": "t", "precision": "fp16",
                            "latency_p50_ms": {}}], "latency_columns": []}
    header, rows = fast_path_table(summary)
    assert rows[0]["cells"][header.index("Android GPU delegate")].startswith("GPU delegate: all ")
