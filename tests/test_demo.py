"""Smoke test of the main job (`make demo`) on one small variant, as on a machine without Debian's dataset."""
import json

import pytest

from mobilenet_edge.calibration import fashion_mnist
from mobilenet_edge.pipeline.demo import run_demo


@pytest.mark.slow
def test_demo_runs_end_to_end_on_the_embedded_dataset(embedded_only, tmp_path):
    result = run_demo(tmp_path, alphas=(0.25,), limit=200, archs=("v1",))
    assert result.passed, result.summary
    assert result.report.is_file() and (tmp_path / "report.html").is_file()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [v["variant"] for v in summary["variants"]] == ["mobilenet_0.25_64"]
    manifest = json.loads((tmp_path / "fashion-mnist" / "mobilenet_0.25_64" / "manifest.json").read_text())
    assert manifest["calibration"]["source"] == str(fashion_mnist.EMBEDDED_DIR)
    validation = json.loads((tmp_path / "fashion-mnist" / "mobilenet_0.25_64" / "validation.json").read_text())
    assert validation["images"] == 200 and validation["passed"]
    assert (tmp_path / "fashion-mnist" / "mobilenet_0.25_64" / "benchmark-local.json").is_file()
