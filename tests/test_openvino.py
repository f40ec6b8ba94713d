"""OpenVINO as a runtime of the .onnx files (benchmarks/runtimes/openvino.py): it loads the QDQ int8 file of a tiny
model and agrees with onnxruntime; its audit reads integer layers from OpenVINO's runtime model; where it is
installed it is planned beside onnxruntime, and missing it changes nothing."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("openvino")


def _onnx(tiny_export, precision):
    return next(a.path for a in tiny_export.artifacts if a.path.suffix == ".onnx" and a.precision == precision)


def test_openvino_runs_the_qdq_int8_file_like_onnxruntime(tiny_export):
    from mobilenet_edge.benchmarks.runtimes import onnxruntime as ort_runtime
    from mobilenet_edge.benchmarks.runtimes import openvino as ov_runtime

    path = str(_onnx(tiny_export, "int8"))
    ov, ort = ov_runtime.load("openvino", path, 1), ort_runtime.load("onnxruntime", path, 1)
    assert ov.inputs[0]["shape"] == [1, 32, 32, 3] and ov.delegate.startswith("CPU ")
    assert ov_runtime.version().count(".") >= 2
    rng = np.random.default_rng(0)
    same, largest = 0, 0.0
    for _ in range(8):
        x = rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
        for backend in (ov, ort):
            backend.feed([x])
            backend.run()
        a, b = ov.output(), ort.output()
        same += int(a.argmax() == b.argmax())
        largest = max(largest, float(np.abs(a - b).max()))
    assert same >= 7, same  # the two runtimes' integer kernels round differently, not much
    assert largest < 0.05, largest


def test_openvino_audit_sees_integer_layers(tiny_export):
    from mobilenet_edge.benchmarks.runtimes import openvino as ov_runtime

    int8, fp32 = ov_runtime.audit(_onnx(tiny_export, "int8")), ov_runtime.audit(_onnx(tiny_export, "fp32"))
    assert int8["runtime"] == "openvino-cpu"
    assert any(key.startswith("Convolution") and key.split()[-1] in ("u8", "i8") for key in int8["fast"]), int8
    assert int8["on_fast_path"] and int8["slow"] == {}
    assert not any(key.split()[-1] in ("u8", "i8") for key in fp32["fast"]), fp32


def test_openvino_is_planned_beside_onnxruntime_only_where_installed(tiny_export):
    import subprocess
    import sys
    from dataclasses import replace

    from mobilenet_edge.benchmarks import runtimes
    from mobilenet_edge.targets import plan

    assert "openvino" in runtimes.also_measured()
    files = [a.path for a in tiny_export.artifacts if a.path.suffix in (".onnx", ".tflite")]
    probe = subprocess.run([sys.executable, "-c", plan.PROBE], capture_output=True, text=True, check=True).stdout
    info = plan.PythonInfo.from_json(probe, "here")
    runs = {r.runtime: r.models for r in plan.plan_runs(files, info)}
    assert set(runs["openvino"]) == set(runs["onnxruntime"]) and all(p.suffix == ".onnx" for p in runs["openvino"])
    without = replace(info, modules={**info.modules, "openvino": None})  # a Pi without it
    assert "openvino" not in {r.runtime for r in plan.plan_runs(files, without)}
