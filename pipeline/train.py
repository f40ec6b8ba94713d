"""Stage 0 — train: MobileNet V1 at alpha on a labelled task, from scratch or fine-tuned from ImageNet.

Produces the reference checkpoints (`pipeline/checkpoints/<task>/mobilenet_<alpha>_<res>.weights.h5`)
with a JSON record of how they were made and their float top-1 on the held-out test split.
"""
from __future__ import annotations

import logging
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from calibration.tasks import Task
from pipeline import build
from pipeline.artifacts import atomic_path, write_json
from pipeline.config import Variant
from pipeline.errors import PipelineError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 8
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    bn_momentum: float = 0.9  # Keras's 0.99 leaves moving statistics near their start after a short run
    bn_batches: int = 100  # batches used to re-estimate BatchNorm statistics after training
    seed: int = 0
    limit: int | None = None  # training images (None: all)
    init: str = "random"  # 'random' or 'imagenet' (fine-tune)
    resolution_sweep: bool = True  # also measure the checkpoint's accuracy at every offered resolution

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise PipelineError(
                f"expected epochs >= 1, batch size >= 1, learning rate > 0, received "
                f"{self.epochs}, {self.batch_size}, {self.learning_rate}"
            )
        if self.init not in ("random", "imagenet"):
            raise PipelineError(f"expected INIT random or imagenet, received {self.init!r}")


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    record: Path
    test_top1: float
    seconds: float


def _initial_model(variant: Variant, task: Task, cfg: TrainConfig):
    model = build.mobilenet(variant.alpha, variant.resolution, task.num_classes, weights=None)
    if cfg.init == "imagenet":
        source = build.build_model(Variant(variant.alpha, variant.resolution, "imagenet", "imagenet"), 1000)
        copied = 0
        for dst, src in zip(model.layers, source.layers):
            if [w.shape for w in dst.weights] == [w.shape for w in src.weights] and dst.weights:
                dst.set_weights(src.get_weights())
                copied += 1
        log.info("fine-tuning: %d layers initialised from ImageNet (the classifier is new)", copied)
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            layer.momentum = cfg.bn_momentum
    return model


def reestimate_batchnorm(model, batches) -> None:
    """Replace BatchNorm moving statistics by their average over `batches` (precise BN).

    With momentum_k = k / (k + 1), the k-th update makes the moving value the plain mean of the first
    k + 1 batch statistics, so the result does not depend on where training left them.
    """
    bns = [l for l in model.layers if l.__class__.__name__ == "BatchNormalization"]
    saved = [l.momentum for l in bns]
    for k, x in enumerate(batches):
        for layer in bns:
            layer.momentum = k / (k + 1)
        model(x, training=True)
    for layer, m in zip(bns, saved):
        layer.momentum = m


def evaluate_top1(model, pixels: np.ndarray, labels: np.ndarray, preprocess, batch_size: int = 256) -> float:
    correct = 0
    for i in range(0, len(pixels), batch_size):
        probs = model.predict_on_batch(preprocess(pixels[i:i + batch_size]))
        correct += int((np.argmax(probs, axis=1) == labels[i:i + batch_size]).sum())
    return correct / len(pixels)


RESOLUTIONS = (32, 48, 64, 96, 128, 160, 192, 224)


def accuracy_by_resolution(checkpoint: Path, task: Task, resolutions=RESOLUTIONS, limit: int | None = None) -> dict:
    """Float top-1 of a checkpoint at each input side (weights are resolution-independent in MobileNet).

    Stored in the checkpoint's JSON record under "accuracy_by_resolution" and shown in the report.
    """
    import json

    record_path = checkpoint.with_name(checkpoint.name.replace(".weights.h5", ".json"))
    record = json.loads(record_path.read_text())
    accuracy = {}
    for res in resolutions:
        model = build.mobilenet(record["alpha"], res, task.num_classes)
        model.load_weights(checkpoint)
        test = task.labeled_images("test", res, limit=limit)
        accuracy[str(res)] = evaluate_top1(model, test.pixels, test.labels, task.preprocessing(res).normalize)
        log.info("%s at %d px: top-1 %.2f %%", checkpoint.name, res, 100 * accuracy[str(res)])
    record["accuracy_by_resolution"] = accuracy
    write_json(record_path, record)
    return accuracy


def train(variant: Variant, task: Task, cfg: TrainConfig, out_dir: Path) -> TrainResult:
    """Train `variant` on `task` and write `<out_dir>/<variant.name>.weights.h5` plus its JSON record."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(cfg.seed)
    start = time.time()
    train_set = task.labeled_images("train", variant.resolution, limit=cfg.limit, seed=cfg.seed)
    test_set = task.labeled_images("test", variant.resolution)
    pre = task.preprocessing(variant.resolution)
    model = _initial_model(variant, task, cfg)

    def augment(x, y):
        x = tf.image.random_flip_left_right(x, seed=cfg.seed)
        return (tf.cast(x, tf.float32) - 127.5) / 127.5, y

    n = len(train_set.labels)
    ds = (tf.data.Dataset.from_tensor_slices((train_set.pixels, train_set.labels))
          .shuffle(n, seed=cfg.seed, reshuffle_each_iteration=True)
          .batch(cfg.batch_size, drop_remainder=True)
          .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE))
    steps = (n // cfg.batch_size) * cfg.epochs
    schedule = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=steps, alpha=0.01)
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay) if cfg.weight_decay
        else keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy", metrics=["accuracy"],
    )
    model.fit(ds, epochs=cfg.epochs, verbose=1)

    rng = np.random.default_rng(cfg.seed)
    bn_index = rng.choice(n, size=min(n, cfg.bn_batches * cfg.batch_size), replace=False)
    reestimate_batchnorm(model, (pre.normalize(train_set.pixels[bn_index[i:i + cfg.batch_size]])
                                 for i in range(0, len(bn_index), cfg.batch_size)))
    top1 = evaluate_top1(model, test_set.pixels, test_set.labels, pre.normalize)
    seconds = time.time() - start
    log.info("%s: float top-1 %.2f %% on %d test images (%.0f s)", variant.name, 100 * top1, len(test_set.labels), seconds)

    checkpoint = Path(out_dir) / f"{variant.name}.weights.h5"
    weights_only = build.mobilenet(variant.alpha, variant.resolution, task.num_classes)  # no optimizer state
    weights_only.set_weights(model.get_weights())
    with atomic_path(checkpoint) as tmp:
        weights_only.save_weights(tmp)
    record = write_json(checkpoint.with_name(f"{variant.name}.json"), {
        "arch": variant.arch, "alpha": variant.alpha, "resolution": variant.resolution,
        "task": task.slug, "classes": list(task.class_names),
        "test_top1": top1, "test_images": int(len(test_set.labels)), "train_images": int(n),
        "dataset_source": train_set.source, "config": asdict(cfg), "seconds": round(seconds, 1),
        "parameters": int(model.count_params()), "tensorflow": tf.__version__, "keras": keras.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "preprocessing": pre.to_dict(),
    })
    if cfg.resolution_sweep:
        accuracy_by_resolution(checkpoint, task)
    return TrainResult(checkpoint, record, top1, seconds)
