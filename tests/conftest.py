"""Shared fixtures: tiny real models, built once per session, and the CLI as a user runs it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "mobilenet_edge.pipeline.cli"]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `mobilenet-edge ARGS` in a subprocess, as a user would."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*CLI, *map(str, args)], cwd=cwd or ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The last stderr line; the CLI's contract is exactly one `error: ...` line for bad input."""
    lines = [l for l in proc.stderr.strip().splitlines() if l.startswith("error:")]
    assert len(lines) == 1, f"expected one error line, got stderr:\n{proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return lines[0]


@pytest.fixture
def embedded_only(monkeypatch, tmp_path):
    """Fashion-MNIST as a machine without Debian's package or a Keras cache sees it: the embedded copy."""
    from mobilenet_edge.calibration import fashion_mnist

    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(fashion_mnist, "KERAS_CACHE_DIR", tmp_path / "no-keras-cache")
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-keras-home"))


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """alpha=0.25, 32 px, every format + per-tensor int8.

    The reference weights (trained at 64 px) rather than random ones: Keras's random MobileNet outputs
    exactly 1/classes for every input at this size, which would make every output comparison vacuous.
    """
    from mobilenet_edge.pipeline.config import ExportConfig, FORMATS, QuantConfig, Variant
    from mobilenet_edge.pipeline.recipe import export_variant
    from mobilenet_edge.pipeline.config import RecipeConfig

    out = tmp_path_factory.mktemp("tiny")
    cfg = RecipeConfig(variant=Variant(0.25, 32, "fashion-mnist", "reference"),
                       export=ExportConfig(formats=FORMATS, out=out), quant=QuantConfig(num_samples=16),
                       per_tensor=True)
    return export_variant(cfg)


@pytest.fixture(scope="session")
def reference_export(tmp_path_factory):
    """The committed alpha=0.25 reference checkpoint at its training resolution, validated on 1,000 images."""
    from mobilenet_edge.pipeline import build
    from mobilenet_edge.pipeline.config import ExportConfig, FORMATS, QuantConfig, Variant
    from mobilenet_edge.pipeline.recipe import export_variant
    from mobilenet_edge.pipeline.config import RecipeConfig
    from mobilenet_edge.pipeline.config import ValidationConfig

    checkpoint = build.reference_checkpoint("fashion-mnist", 0.25)
    resolution = build.checkpoint_info(checkpoint)["resolution"]
    out = tmp_path_factory.mktemp("reference")
    cfg = RecipeConfig(variant=Variant(0.25, resolution, "fashion-mnist", "reference"),
                       export=ExportConfig(formats=FORMATS, out=out), quant=QuantConfig(num_samples=100),
                       per_tensor=True, validation=ValidationConfig(limit=1000))
    return export_variant(cfg)
