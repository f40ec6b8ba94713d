"""benchmarks/runner.py run as a user runs it (a subprocess), on tiny real MobileNets: fp32/int8 .tflite, fp32 .onnx."""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, error_line

RUNNER = ROOT / "benchmarks" / "runner.py"
RESULT_KEYS = {"model", "bytes", "runtime", "runtime_version", "threads", "delegate", "fast_path", "input_dtype", "init_ms",
               "first_inference_ms", "runs", "latency_ms", "peak_rss_mb", "thermal"}
RESULT_KEYS |= {"p50_ci95_ms", "ci_half_width", "stop", "disturbed", "attempts"}  # the p50's interval, why timing stopped
HOST_KEYS = {"machine", "cpu", "cores", "os", "python", "numpy", "runtimes", "governor", "throttled"}
LATENCY_KEYS = {"p50", "p90", "p99", "mean", "std", "min", "max"}


def run_runner(*args, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RUNNER), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """alpha=0.25, 32x32x3, 4 classes, random weights: fp32 .tflite, int8 .tflite (uint8 I/O), fp32 .onnx."""
    import keras
    import tensorflow as tf
    import tf2onnx

    out = tmp_path_factory.mktemp("runner_models")
    model = keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=0.25, classes=4, weights=None)
    rng = np.random.default_rng(0)

    def representative():
        for _ in range(8):
            yield [rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)]

    paths = {"fp32": out / "tiny_fp32.tflite", "int8": out / "tiny_int8.tflite", "onnx": out / "tiny_fp32.onnx"}
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints every captured tensor
        paths["fp32"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.uint8
        paths["int8"].write_bytes(converter.convert())
    spec = [tf.TensorSpec([None, 32, 32, 3], tf.float32, name="input")]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
    paths["onnx"].write_bytes(proto.SerializeToString())
    return paths


@pytest.fixture(scope="module")
def report(models, tmp_path_factory):
    """One default run over all three models, with --table and --dump-outputs: (process, JSON, dump folder)."""
    dump = tmp_path_factory.mktemp("dump")
    proc = run_runner(*models.values(), "--threads", 1, "--warmup", 2, "--runs", 5, "--table", "--dump-outputs", dump)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc, json.loads(proc.stdout), dump


def test_stdout_is_one_json_document_in_the_benchmark_shape(models, report):
    _, doc, _ = report
    assert set(doc) == {"host", "results"}
    assert HOST_KEYS <= set(doc["host"]) and doc["host"]["cores"] >= 1 and doc["host"]["machine"]
    assert "onnxruntime" in doc["host"]["runtimes"]
    by_model = {r["model"]: r for r in doc["results"]}
    assert list(by_model) == [p.name for p in models.values()]
    for key, path in models.items():
        r = by_model[path.name]
        assert set(r) == RESULT_KEYS
        assert r["bytes"] == path.stat().st_size and r["threads"] == 1 and r["runs"] >= 5  # at least: then until the p50 is tight
        assert set(r["latency_ms"]) == LATENCY_KEYS
        lat = r["latency_ms"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert r["init_ms"] > 0 and r["first_inference_ms"] > 0 and r["peak_rss_mb"] > 0
        assert set(r["thermal"]) == {"temp_before_c", "temp_after_c", "throttled"}
        assert r["runtime_version"]
    assert by_model[models["fp32"].name]["input_dtype"] == "float32"
    assert by_model[models["int8"].name]["input_dtype"] == "uint8"
    assert by_model[models["onnx"].name]["input_dtype"] == "float32"
    assert by_model[models["onnx"].name]["runtime"] == "onnxruntime"
    assert by_model[models["onnx"].name]["delegate"] is None
    for key in ("fp32", "int8"):  # auto = ai-edge-litert here, whichever of its two paths was faster
        assert by_model[models[key].name]["runtime"] in ("litert-compiled", "litert-interpreter")
        assert by_model[models[key].name]["delegate"] == "XNNPACK"


def test_fast_path_is_the_pipeline_audit_of_the_same_file(models, report):
    """The runner's copy of the delegation rule (it stands alone) agrees with pipeline.convert.fastpath's."""
    from mobilenet_edge.pipeline.convert.fastpath import audit

    _, doc, _ = report
    by_model = {r["model"]: r for r in doc["results"]}
    for key in ("fp32", "int8"):
        assert by_model[models[key].name]["fast_path"] == audit(models[key]).to_dict()
    onnx = by_model[models["onnx"].name]["fast_path"]
    assert onnx["runtime"] == "onnxruntime-cpu" and onnx["on_fast_path"] and onnx["fast"].get("Conv", 0) > 0


def test_table_goes_to_stderr_without_runtime_log_noise(models, report):
    proc, _, _ = report
    assert "p50" in proc.stderr and all(p.name in proc.stderr for p in models.values())
    assert "INFO:" not in proc.stderr and "WARNING:" not in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("runtime, kinds, module", [
    ("litert-interpreter", ("fp32", "int8"), "ai_edge_litert"),
    ("litert-compiled", ("fp32", "int8"), "ai_edge_litert"),
    ("litert", ("int8",), "ai_edge_litert"),
    ("onnxruntime", ("onnx",), "onnxruntime"),
])
def test_every_installed_runtime_gives_results(models, runtime, kinds, module):
    """tflite-runtime needs numpy < 2, so it has its own environment: tests/test_bench_remote.py runs the runner
    with it on x86 and on the emulated Pi."""
    if not installed(module):
        pytest.skip(f"{module} is not installed")
    proc = run_runner(*(models[k] for k in kinds), "--runtime", runtime, "--threads", 1, "--warmup", 1,
                      "--runs", 3)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout)["results"]
    assert [r["model"] for r in results] == [models[k].name for k in kinds]
    for r in results:
        assert r["runtime"] in (("litert-compiled", "litert-interpreter") if runtime == "litert" else (runtime,))
        assert r["runs"] >= 3 and r["latency_ms"]["p50"] > 0


def test_dump_outputs_are_the_models_outputs_on_a_realistic_input(models, report):
    from ai_edge_litert.interpreter import Interpreter
    import onnxruntime as ort

    _, _, dump = report
    for key, path in models.items():
        x = np.load(dump / f"{path.name}.input.npy")
        y = np.load(dump / f"{path.name}.output.npy")
        assert x.shape == (1, 32, 32, 3) and y.shape == (1, 4)
        assert x.dtype == (np.uint8 if key == "int8" else np.float32) and y.dtype == x.dtype
        assert len(np.unique(x)) > 50 and x.std() > 0  # an image-like input, not zeros or a constant
        if key == "onnx":
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            expected = session.run(None, {session.get_inputs()[0].name: x})[0]
        else:
            interpreter = Interpreter(model_path=str(path))
            interpreter.allocate_tensors()
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
            interpreter.invoke()
            expected = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        atol = 1 if key == "int8" else 1e-5  # int8: one quantization step
        np.testing.assert_allclose(y.astype(np.float64), expected.astype(np.float64), atol=atol)


def test_dumped_input_depends_on_the_seed_only(models, report, tmp_path):
    _, _, dump = report
    name = models["int8"].name
    for seed in (0, 1):
        proc = run_runner(models["int8"], "--runtime", "litert-compiled", "--threads", 1, "--warmup", 0, "--runs", 1,
                          "--seed", seed, "--dump-outputs", tmp_path / str(seed))
        assert proc.returncode == 0, proc.stderr[-2000:]
    first, again = np.load(dump / f"{name}.input.npy"), np.load(tmp_path / "0" / f"{name}.input.npy")
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, np.load(tmp_path / "1" / f"{name}.input.npy"))


def _assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str):
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stdout == ""
    line = error_line(proc)
    assert line.startswith("error: expected ") and ", received " in line
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in line


def test_missing_model_is_a_one_line_error(tmp_path):
    _assert_one_line_error(run_runner(tmp_path / "absent.tflite"), "expected a model file", "absent.tflite")


@pytest.mark.parametrize("name, runtime", [("garbage.tflite", "auto"), ("truncated.tflite", "litert-compiled"),
                                           ("garbage.onnx", "auto")])
def test_corrupt_model_is_a_one_line_error(models, tmp_path, name, runtime):
    path = tmp_path / name
    if name.startswith("truncated"):  # a CompiledModel alone would crash on this one
        path.write_bytes(models["fp32"].read_bytes()[:100_000])
    else:
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _assert_one_line_error(run_runner(path, "--runtime", runtime), "can load", name)


def test_runtime_not_installed_names_the_pip_fix(models, tmp_path):
    if not installed("tflite_runtime"):
        proc = run_runner(models["int8"], "--runtime", "tflite-runtime")
        _assert_one_line_error(proc, "tflite-runtime", "pip install tflite-runtime")
    # A folder of packages that fail to import, first on the path: the runner meets a broken or missing install.
    for package in ("ai_edge_litert", "onnxruntime"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(f"raise ImportError('No module named {package!r}')\n")
    env = {"PYTHONPATH": str(tmp_path)}
    _assert_one_line_error(run_runner(models["onnx"], env=env), "pip install onnxruntime")
    _assert_one_line_error(run_runner(models["fp32"], env=env), "pip install ai-edge-litert")
    _assert_one_line_error(run_runner(models["fp32"], "--runtime", "onnxruntime"), "--runtime onnxruntime")
