"""Helpers shared by test_targets.py and test_bench_remote.py (not a test module itself).

`tiny_variant()` builds, once per test process, a real alpha=0.25, 32 px, 4-class MobileNet variant folder
(fp32 / fp16 / dynamic / full-int8 with uint8 I/O .tflite, fp32 .onnx). `pi_emulator()` builds (cached) and
starts the emulated Raspberry Pi and returns its connection settings.
"""
from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EMULATOR = ROOT / "targets" / "pi_emulator" / "pi-emulator.sh"
VARIANT = "mobilenet_0.25_32"
PRECISIONS = ("fp32", "fp16", "dynamic", "int8")


def _non_degenerate(model, seed: int = 0) -> None:
    """He-normal kernels and jittered batch-norm scales.

    Keras' default initialisation of MobileNet (glorot on 3x3 depthwise kernels) shrinks activations by
    ~10x per block: at 32 px the features reach ~1e-18 and every output is exactly 1/classes, which
    would make any output comparison pass trivially.
    """
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            weights = layer.get_weights()
            k = weights[0]
            fan_in = k.shape[0] * k.shape[1] * (1 if isinstance(layer, keras.layers.DepthwiseConv2D) else k.shape[2])
            gain = 4.0 if layer.name == "conv_preds" else 1.0  # spread the 4 logits apart
            weights[0] = (gain * rng.normal(0, np.sqrt(2.0 / fan_in), k.shape)).astype(np.float32)
            layer.set_weights(weights)
        elif isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.8, 1.2, gamma.shape).astype(np.float32),
                               rng.normal(0.1, 0.1, beta.shape).astype(np.float32), mean, var])


def _samples(n: int, seed: int) -> np.ndarray:
    """Smooth random images in [-1, 1], the preprocessing contract's range."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1, 1, (n, 4, 4, 3))
    return np.clip(np.kron(coarse, np.ones((1, 8, 8, 1))) + rng.normal(0, 0.1, (n, 32, 32, 3)), -1, 1).astype(np.float32)


@functools.lru_cache(maxsize=None)
def tiny_variant() -> Path:
    """OUT/fashion-mnist/mobilenet_0.25_32/ with every precision as .tflite and fp32 .onnx; built once."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from mobilenet_edge.pipeline.convert.onnx import convert_onnx

    out = Path(tempfile.mkdtemp(prefix="targets-variant-"))
    atexit.register(shutil.rmtree, out, True)
    folder = out / "fashion-mnist" / VARIANT
    folder.mkdir(parents=True)
    model = keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=0.25, weights=None, classes=4)
    _non_degenerate(model)
    calib = _samples(16, seed=1)
    for precision in PRECISIONS:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if precision != "fp32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if precision == "fp16":
            converter.target_spec.supported_types = [tf.float16]
        if precision == "int8":
            converter.representative_dataset = lambda: ([x[None]] for x in calib)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.uint8
        (folder / f"{VARIANT}_{precision}.tflite").write_bytes(converter.convert())
    convert_onnx(model, folder / f"{VARIANT}_fp32.onnx", calib[:4])
    return folder


@functools.lru_cache(maxsize=None)
def pi_emulator() -> dict:
    """Build (cached in PI_EMULATOR_DIR) and start the emulated Pi; its settings (HOST, PORT, IDENTITY, ...).

    An sshd that this call started is stopped when the test process exits; one already running is left.
    """
    was_running = subprocess.run(["bash", str(EMULATOR), "status"], capture_output=True).returncode == 0
    proc = subprocess.run(["bash", str(EMULATOR), "start"], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"pi-emulator.sh start failed:\n{proc.stderr[-4000:]}")
    if not was_running:
        atexit.register(subprocess.run, ["bash", str(EMULATOR), "stop"], capture_output=True)
    settings = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line and not line.startswith("#"))
    settings["PORT"] = int(settings["PORT"])
    return settings


def run_runner(python: str, models: list[Path], dump: Path, *extra: str) -> subprocess.CompletedProcess:
    """benchmarks/runner.py on this machine with `python`, dumping the seeded inputs and outputs into `dump`."""
    return subprocess.run([python, str(ROOT / "benchmarks" / "runner.py"), *map(str, models), "--runs", "2",
                           "--warmup", "0", "--dump-outputs", str(dump), *extra],
                          capture_output=True, text=True, timeout=600)


def assert_outputs_match(got_dir: Path, want_dir: Path, names: list[str], float_atol: float = 1e-4) -> dict:
    """Same seeded inputs; integer outputs within one quantization step, float ones within `float_atol`.

    Returns the largest difference per model, for the test's message.
    """
    diffs = {}
    for name in names:
        assert np.array_equal(np.load(got_dir / f"{name}.input.npy"), np.load(want_dir / f"{name}.input.npy")), name
        got, want = np.load(got_dir / f"{name}.output.npy"), np.load(want_dir / f"{name}.output.npy")
        assert got.dtype == want.dtype and got.shape == want.shape, (name, got.dtype, want.dtype, got.shape)
        diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
        limit = 1 if got.dtype.kind in "iu" else float_atol
        assert diff <= limit, f"{name}: max |ARM - x86| = {diff} > {limit}"
        diffs[name] = diff
    return diffs
