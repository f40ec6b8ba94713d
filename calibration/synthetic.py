"""Data-free calibration: inputs synthesised from the model's own BatchNorm statistics (ZeroQ).

ZeroQ (Cai et al., CVPR 2020) starts from random inputs and optimises them so that, at every BatchNorm
layer, the batch mean and standard deviation of the layer's input match the running statistics the layer
learned on real data. Such inputs drive every activation over roughly the ranges real images do, which is
what int8 calibration needs; they look nothing like photos, so real images (`CALIB=`) still calibrate better.

The optimised inputs are rounded to uint8 pixels and normalised by the variant's preprocessing contract,
exactly like a real calibration image (V1/V2: [-1, 1]; V3: 0..255 into the model's own Rescaling layer).
They are cached per model weights, variant, count, seed and settings under the cache folder.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mobilenet_edge.calibration.preprocessing import Preprocessing

log = logging.getLogger(__name__)

SOURCE = "synthetic"  # the CALIB value that asks for it, and the source named in the manifest
CODE_VERSION = 1  # bump when the optimisation changes: old cache entries then miss
BN_EPSILON = 1e-3


@dataclass(frozen=True)
class SyntheticConfig:
    """How hard to optimise: `steps` Adam steps per batch of `batch` inputs, in [-1, 1]-scaled input units."""

    # 25 steps calibrate as well as 100 on the reference checkpoints (benchmarks/records/
    # synthetic_calibration.json); at 224 px a step costs seconds, so the steps set the time there.
    steps: int = 25
    batch: int = 32
    learning_rate: float = 0.1


@dataclass(frozen=True)
class SyntheticSamples:
    pixels: np.ndarray  # uint8 (N, R, R, 3), before normalisation
    key: str  # sha256 of everything that shaped them: the cache key
    cached: bool


def default_cache_dir() -> Path:
    """$MOBILENET_EDGE_CACHE, else $XDG_CACHE_HOME/mobilenet-edge, else ~/.cache/mobilenet-edge."""
    if os.environ.get("MOBILENET_EDGE_CACHE"):
        return Path(os.environ["MOBILENET_EDGE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mobilenet-edge"


def weights_digest(model) -> str:
    """sha256 over every weight of the model, BatchNorm statistics included (whatever file they came from)."""
    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(str(w.shape).encode())
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def batchnorm_probe(model):
    """(Keras model returning the input of every BatchNorm layer, those layers) for `model`."""
    import keras

    layers = [l for l in model.layers if l.__class__.__name__ == "BatchNormalization"]
    if not layers:
        from mobilenet_edge.pipeline.errors import PipelineError

        raise PipelineError(f"expected a model with BatchNorm layers for data-free calibration, received {model.name}")
    return keras.Model(model.inputs, [l.input for l in layers]), layers


def batchnorm_gap(model, x: np.ndarray) -> float:
    """Mean over BatchNorm layers of |batch mean − running mean| + |batch std − running std| (per channel, RMS).

    0 when a batch reproduces every layer's running statistics; what the optimisation lowers.
    """
    probe, layers = batchnorm_probe(model)
    return float(_gap(probe, layers, x).numpy()) / len(layers)


def _gap(probe, layers, x):
    import tensorflow as tf

    features = probe(x, training=False)
    total = 0.0
    for f, layer in zip(features, layers):
        mean, var = tf.nn.moments(f, axes=[0, 1, 2])
        total += tf.norm(mean - layer.moving_mean) / tf.sqrt(tf.cast(tf.size(mean), tf.float32))
        total += tf.norm(tf.sqrt(var + BN_EPSILON) - tf.sqrt(layer.moving_variance + BN_EPSILON)) / tf.sqrt(
            tf.cast(tf.size(mean), tf.float32))
    return total


def optimise_inputs(model, count: int, seed: int, value_range: tuple[float, float],
                    cfg: SyntheticConfig = SyntheticConfig(), progress: bool = True) -> np.ndarray:
    """`count` float inputs in `value_range` whose BatchNorm statistics approach the running ones."""
    import tensorflow as tf

    probe, layers = batchnorm_probe(model)
    low, high = value_range
    mid, half = (high + low) / 2, (high - low) / 2
    side = model.input_shape[1]
    rng = np.random.default_rng(seed)
    out = []
    batches = range(0, count, cfg.batch)
    with tqdm(total=len(batches) * cfg.steps, desc="synthetic calibration", unit="step", disable=not progress,
              leave=False) as bar:
        for start in batches:
            n = min(cfg.batch, count - start)
            # Optimised in [-1, 1] units whatever the model's input range, so one learning rate fits V1 and V3.
            init = np.clip(rng.normal(0.0, 0.5, (n, side, side, 3)), -1, 1).astype(np.float32)
            u = tf.Variable(init)
            opt = tf.keras.optimizers.Adam(cfg.learning_rate)

            @tf.function  # one graph per batch: eager Keras ops would cost more than the maths
            def step():
                with tf.GradientTape() as tape:
                    loss = _gap(probe, layers, mid + half * u)
                opt.apply_gradients([(tape.gradient(loss, u), u)])
                u.assign(tf.clip_by_value(u, -1.0, 1.0))  # stay inside the range real pixels can reach
                return loss

            for _ in range(cfg.steps):
                loss = step()
                bar.update()
            out.append(mid + half * u.numpy())
            if cfg.steps:
                log.debug("synthetic batch %d: BatchNorm gap %.4f", start // cfg.batch, float(loss) / len(layers))
    return np.concatenate(out).astype(np.float32)


def to_pixels(x: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """Model inputs -> the uint8 pixels the contract would normalise to them (rounded, clipped)."""
    mean, std = np.asarray(pre.mean, np.float32), np.asarray(pre.std, np.float32)
    return np.clip(np.round(x * std + mean), 0, 255).astype(np.uint8)


def synthetic_key(model, pre: Preprocessing, count: int, seed: int, cfg: SyntheticConfig) -> str:
    parts = [weights_digest(model), model.name, repr(model.input_shape), repr(model.output_shape),
             repr(sorted(pre.to_dict().items())), str(count), str(seed), repr(sorted(asdict(cfg).items())),
             str(CODE_VERSION)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def synthetic_pixels(model, pre: Preprocessing, count: int, seed: int = 0, cfg: SyntheticConfig = SyntheticConfig(),
                     cache_dir: Path | None = None, progress: bool = True) -> SyntheticSamples:
    """ZeroQ inputs for `model` as uint8 pixels (contract `pre`), from the cache when this exact set was made."""
    from mobilenet_edge.pipeline.artifacts import atomic_path

    key = synthetic_key(model, pre, count, seed, cfg)
    path = Path(cache_dir or default_cache_dir()) / "synthetic" / f"{key}.npy"
    if path.is_file():
        try:
            pixels = np.load(path)
            if pixels.shape == (count, pre.resolution, pre.resolution, 3) and pixels.dtype == np.uint8:
                log.info("synthetic calibration: %d samples from the cache (%s)", count, path)
                return SyntheticSamples(pixels, key, cached=True)
        except (OSError, ValueError):
            pass  # a damaged cache entry is made again
    low, high = pre.to_dict()["output_range"]
    pixels = to_pixels(optimise_inputs(model, count, seed, (low, high), cfg, progress), pre)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, pixels)
    return SyntheticSamples(pixels, key, cached=False)
