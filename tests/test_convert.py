"""Stage 4-5: every format is produced, runs, has the requested I/O, and is described by the manifest."""
import json

import numpy as np
import pytest

from conftest import error_line, run_cli
from mobilenet_edge.pipeline.artifacts import sha256_file


def _by(result, precision, fmt="tflite", per_channel=True):
    for a in result.artifacts:
        if a.precision == precision and a.format == fmt and (a.per_channel in (None, per_channel)):
            return a
    raise AssertionError(f"no {fmt} {precision} artifact")


def test_every_format_is_written_and_listed(tiny_export):
    files = sorted(a.path.name for a in tiny_export.artifacts)
    assert files == sorted([
        "mobilenet_0.25_32_fp32.tflite", "mobilenet_0.25_32_fp16.tflite", "mobilenet_0.25_32_dynamic.tflite",
        "mobilenet_0.25_32_int8.tflite", "mobilenet_0.25_32_int8_per_tensor.tflite",
        "mobilenet_0.25_32_fp32.onnx", "mobilenet_0.25_32_int8.onnx",
    ])
    manifest = json.loads(tiny_export.manifest.read_text())
    assert {e["file"] for e in manifest["artifacts"]} == set(files)
    for entry in manifest["artifacts"]:
        path = tiny_export.variant_dir / entry["file"]
        assert entry["bytes"] == path.stat().st_size and entry["sha256"] == sha256_file(path)
        assert entry["format"] in ("tflite", "onnx") and entry["precision"] in ("fp32", "fp16", "dynamic", "int8")
    assert manifest["variant"]["alpha"] == 0.25 and manifest["variant"]["resolution"] == 32
    assert manifest["variant"]["classes"] == 10 and manifest["variant"]["weights"] == "reference"
    assert manifest["calibration"]["count"] == 16 and len(manifest["calibration"]["sha256"]) == 64
    assert manifest["preprocessing"]["mean"] == [127.5] * 3
    for tool in ("tensorflow", "tf2onnx", "onnx", "onnxruntime", "ai_edge_litert", "numpy"):
        assert manifest["versions"][tool]
    assert not list(tiny_export.variant_dir.glob(".*")), "temporary files left behind"


def test_int8_is_uint8_io_with_quantization_parameters(tiny_export):
    spec_in, spec_out = _by(tiny_export, "int8").inputs[0], _by(tiny_export, "int8").outputs[0]
    assert spec_in["dtype"] == "uint8" and spec_out["dtype"] == "uint8"
    # [-1, 1] inputs over 256 levels: scale 2/255 and zero point 127 or 128
    assert spec_in["scale"] == pytest.approx(2 / 255, rel=0.02) and spec_in["zero_point"] in (127, 128)
    assert spec_out["scale"] == pytest.approx(1 / 256, rel=0.02) and spec_out["zero_point"] == 0


def test_float_artifacts_have_float_io(tiny_export):
    for precision in ("fp32", "fp16", "dynamic"):
        assert _by(tiny_export, precision).inputs[0]["dtype"] == "float32"


def test_int8_tensors_inside_are_int8(tiny_export):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(_by(tiny_export, "int8").path))
    dtypes = {d["dtype"] for d in interp.get_tensor_details()}
    assert np.int8 in dtypes and np.float32 not in dtypes


def test_per_tensor_has_one_scale_per_weight_tensor(tiny_export):
    from ai_edge_litert.interpreter import Interpreter

    def max_scales(path):
        interp = Interpreter(model_path=str(path))
        return max(len(d["quantization_parameters"]["scales"]) for d in interp.get_tensor_details())

    assert max_scales(_by(tiny_export, "int8", per_channel=False).path) == 1
    assert max_scales(_by(tiny_export, "int8").path) > 1


def test_onnx_matches_keras_and_has_dynamic_batch(tiny_export):
    import keras

    from mobilenet_edge.pipeline.convert.onnx import run_session, session

    onnx = _by(tiny_export, "fp32", "onnx")
    assert onnx.inputs[0]["shape"][0] == -1
    model = keras.models.load_model(tiny_export.variant_dir / "model.keras", compile=False)
    x = np.random.default_rng(0).uniform(-1, 1, (5, 32, 32, 3)).astype(np.float32)
    reference = model.predict_on_batch(x)
    assert np.ptp(reference, axis=0).max() > 1e-3, "outputs do not depend on the input: comparison is vacuous"
    assert np.max(np.abs(run_session(session(onnx.path), x) - model.predict_on_batch(x))) <= 1e-4


def test_onnx_int8_is_qdq(tiny_export):
    import onnx

    graph = onnx.load(str(_by(tiny_export, "int8", "onnx").path)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_rerun_reproduces_the_same_files(tiny_export, tmp_path):
    from mobilenet_edge.pipeline.config import ExportConfig, QuantConfig, Variant
    from mobilenet_edge.pipeline.convert.metadata import strip_metadata
    from mobilenet_edge.pipeline.recipe import export_variant
    from mobilenet_edge.pipeline.config import RecipeConfig

    again = export_variant(RecipeConfig(
        variant=Variant(0.25, 32, "fashion-mnist", "reference"),
        export=ExportConfig(formats=("fp32", "int8"), out=tmp_path), quant=QuantConfig(num_samples=16)))
    for precision in ("fp32", "int8"):
        assert sha256_file(_by(again, precision).path) == sha256_file(_by(tiny_export, precision).path)
    # Other weights file, same weights: only the metadata's provenance may differ, never the model.
    other = export_variant(RecipeConfig(
        variant=Variant(0.25, 32, "fashion-mnist", str(tiny_export.variant_dir / "model.keras")),
        export=ExportConfig(formats=("fp32",), out=tmp_path / "other")))
    assert strip_metadata(_by(other, "fp32").path.read_bytes()) == strip_metadata(_by(tiny_export, "fp32").path.read_bytes())


def test_int8_io_options(tmp_path):
    proc = run_cli("export", "--alpha", "0.25", "--res", "32", "--task", "fashion-mnist", "--weights", "random",
                   "--out", tmp_path, "--formats", "int8", "--int8-io", "int8", "--n", "8")
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads(next(tmp_path.rglob("manifest.json")).read_text())
    (entry,) = manifest["artifacts"]
    assert entry["inputs"][0]["dtype"] == "int8" and entry["io_dtype"] == "int8"


def test_a_later_format_adds_to_the_manifest(tmp_path):
    for fmt in ("fp32", "fp16"):
        proc = run_cli("export", "--alpha", "0.25", "--res", "32", "--task", "fashion-mnist", "--weights",
                       "random", "--out", tmp_path, "--formats", fmt)
        assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads(next(tmp_path.rglob("manifest.json")).read_text())
    assert [e["precision"] for e in manifest["artifacts"]] == ["fp16", "fp32"]


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = run_cli("export", "--alpha", "0.25", "--res", "32", "--task", "fashion-mnist", "--weights", "random",
                   "--out", blocker / "out", "--formats", "fp32")
    assert proc.returncode == 2
    assert "expected a writable output folder" in error_line(proc)
