"""Stage 6: drift against the float model on real labels, and a gate that fails when it should."""
import json
import shutil

import numpy as np
import pytest

from conftest import run_cli
from mobilenet_edge.pipeline.validate import metrics
from mobilenet_edge.pipeline.validate import check_gate
from mobilenet_edge.pipeline.config import Gates


def test_metrics_on_known_values():
    ref = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    same = metrics.drift_metrics(ref, ref.copy(), np.array([0, 2]))
    assert same["top1_agreement"] == 1 and same["kl_mean"] == pytest.approx(0, abs=1e-9)
    assert same["sqnr_db"] == float("inf") and same["top1"] == 0.5 and same["top1_drop_points"] == 0
    flipped = metrics.drift_metrics(ref, np.roll(ref, 1, axis=1), None)
    assert flipped["top1_agreement"] == 0 and flipped["kl_mean"] > 0.5 and "top1" not in flipped
    noisy = ref + 0.01
    assert metrics.sqnr_db(ref, noisy) == pytest.approx(10 * np.log10((ref ** 2).sum() / (0.01 ** 2 * 6)))


def test_gate_rules():
    gates = Gates()
    assert check_gate(gates, "fp32", {"top1_agreement": 0.9995}, True)["passed"]
    assert not check_gate(gates, "fp32", {"top1_agreement": 0.998}, True)["passed"]
    assert check_gate(gates, "fp16", {"top1_agreement": 0.996}, True)["passed"]
    assert not check_gate(gates, "int8", {"top1_drop_points": 1.2, "top1_agreement": 0.99}, True)["passed"]
    assert check_gate(gates, "int8", {"top1_drop_points": 1.2, "top1_agreement": 0.99}, False)["passed"]


def test_reference_variant_meets_the_gates(reference_export):
    data = json.loads(reference_export.validation.path.read_text())
    assert data["labelled"] and data["images"] == 1000
    assert data["float"]["top1"] >= 0.88  # 1,000 of the 10,000 test images; the full-set figure is >= 90 %
    rows = {(r["file"].split("_", 3)[-1]): r for r in data["artifacts"]}
    assert rows["fp32.tflite"]["metrics"]["top1_agreement"] >= 0.999
    assert rows["fp32.onnx"]["metrics"]["top1_agreement"] >= 0.999
    assert rows["fp16.tflite"]["metrics"]["top1_agreement"] >= 0.995
    assert rows["int8.tflite"]["metrics"]["top1_drop_points"] <= 1.0
    assert not rows["int8_per_tensor.tflite"]["gate"]["enforced"]  # shown, not gated
    assert data["passed"], data


def test_validate_fails_on_a_bad_artifact(reference_export, tmp_path):
    """Swap the int8 model for one with random weights: `validate` must exit non-zero and name it."""
    from mobilenet_edge.pipeline.build import build_model
    from mobilenet_edge.pipeline.config import QuantConfig, Variant
    from mobilenet_edge.pipeline.convert.tflite import tflite_bytes
    from mobilenet_edge.calibration.representative import calibration_set
    from mobilenet_edge.calibration.tasks import resolve_task

    out = tmp_path / "out"
    shutil.copytree(reference_export.variant_dir.parents[1], out)
    folder = out / reference_export.variant_dir.relative_to(reference_export.variant_dir.parents[1])
    manifest = json.loads((folder / "manifest.json").read_text())
    resolution = manifest["variant"]["resolution"]
    broken = build_model(Variant(0.25, resolution, "fashion-mnist", "random"), 10)
    calib = calibration_set(resolve_task("fashion-mnist"), resolution, 10, progress=False)
    bad_file = folder / f"mobilenet_0.25_{resolution}_int8.tflite"
    bad_file.write_bytes(tflite_bytes(broken, "int8", calib, QuantConfig()))

    proc = run_cli("validate", "--alpha", "0.25", "--res", resolution, "--task", "fashion-mnist", "--out", out,
                   "--limit", "200")
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    assert f"FAIL {bad_file.name}: top1_drop_points" in proc.stdout
    assert "fp32.tflite" in proc.stdout and "pass" in proc.stdout


def test_validate_without_a_variant_folder(tmp_path):
    proc = run_cli("validate", "--alpha", "0.25", "--res", "32", "--task", "fashion-mnist", "--out", tmp_path)
    assert proc.returncode == 2 and "expected a converted variant folder" in proc.stderr
