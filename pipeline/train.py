"""Stage 0 — train: a MobileNet (any ARCH) on a labelled task, from scratch or fine-tuned from given weights.

Produces the reference checkpoints (`pipeline/checkpoints/<task>/<variant>.weights.h5`) with a JSON record
of how they were made and their float top-1 on the held-out test split.

Multi-resolution training (`resolutions=(32, 48, 64, 96)`): MobileNet's weights do not depend on the input
side, but a network trained at one side is at chance at a very different one (the garments' scale in pixels
changes). Each training step takes one side in turn, through a view of the model that accepts any side and
shares its layers; afterwards BatchNorm statistics are re-estimated at every trained side and stored per side
(`<variant>.bn.npz`, applied by `pipeline.build`), because activation statistics differ between sides.
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
from pipeline.config import MIN_RESOLUTION, Variant
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
    init: str = "random"  # 'random', 'imagenet' (fine-tune) or a weights file of the same variant
    resolutions: tuple[int, ...] = ()  # multi-resolution training sides; () = the variant's side only
    resolution_sweep: bool = True  # also measure the checkpoint's accuracy at every offered resolution

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise PipelineError(
                f"expected epochs >= 1, batch size >= 1, learning rate > 0, received "
                f"{self.epochs}, {self.batch_size}, {self.learning_rate}"
            )
        if self.init not in ("random", "imagenet") and not Path(self.init).is_file():
            raise PipelineError(f"expected INIT random, imagenet or an existing weights file, received {self.init!r}")
        if any(not isinstance(r, int) or r < MIN_RESOLUTION for r in self.resolutions):
            raise PipelineError(f"expected training resolutions >= {MIN_RESOLUTION}, received {self.resolutions}")


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    record: Path
    test_top1: float
    seconds: float


def _initial_model(variant: Variant, task: Task, cfg: TrainConfig):
    model = build.mobilenet(variant.alpha, variant.resolution, task.num_classes, weights=None, arch=variant.arch)
    if cfg.init == "imagenet":
        source = build.build_model(Variant(variant.alpha, variant.resolution, "imagenet", "imagenet", variant.arch), 1000)
        copied = 0
        for dst, src in zip(model.layers, source.layers):
            if [w.shape for w in dst.weights] == [w.shape for w in src.weights] and dst.weights:
                dst.set_weights(src.get_weights())
                copied += 1
        log.info("fine-tuning: %d layers initialised from ImageNet (the classifier is new)", copied)
    elif cfg.init != "random":
        build.load_weights_file(model, Path(cfg.init), variant)
        log.info("fine-tuning from %s", cfg.init)
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            layer.momentum = cfg.bn_momentum
    return model


def any_size_view(model):
    """The same layers (same weights) behind an input of any side, so one model trains at several sides."""
    import keras

    return keras.models.clone_model(model, input_tensors=keras.Input((None, None, 3)), clone_function=lambda l: l)


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
    """Float top-1 of a checkpoint at each input side, with the BatchNorm statistics of that side if it has them.

    Stored in the checkpoint's JSON record under "accuracy_by_resolution" and shown in the report.
    """
    record = build.checkpoint_info(checkpoint)
    arch = record.get("arch", "v1")
    accuracy = dict(record.get("accuracy_by_resolution", {}))
    for res in resolutions:
        model = build.mobilenet(record["alpha"], res, task.num_classes, arch=arch)
        model.load_weights(checkpoint)
        build.load_batchnorm_statistics(model, checkpoint, res)
        test = task.labeled_images("test", res, limit=limit)
        accuracy[str(res)] = evaluate_top1(model, test.pixels, test.labels, task.preprocessing(res, arch).normalize)
        log.info("%s at %d px: top-1 %.2f %%", checkpoint.name, res, 100 * accuracy[str(res)])
    record["accuracy_by_resolution"] = dict(sorted(accuracy.items(), key=lambda kv: int(kv[0])))
    write_json(checkpoint.with_name(checkpoint.name.replace(".weights.h5", ".json")), record)
    return accuracy


def _dataset(pixels: np.ndarray, labels: np.ndarray, cfg: TrainConfig, mean: float, std: float):
    import tensorflow as tf

    def augment(x, y):
        x = tf.image.random_flip_left_right(x, seed=cfg.seed)
        return (tf.cast(x, tf.float32) - mean) / std, y

    return (tf.data.Dataset.from_tensor_slices((pixels, labels))
            .shuffle(len(labels), seed=cfg.seed, reshuffle_each_iteration=True)
            .repeat()
            .batch(cfg.batch_size, drop_remainder=True)
            .map(augment, num_parallel_calls=tf.data.AUTOTUNE))


def train(variant: Variant, task: Task, cfg: TrainConfig, out_dir: Path) -> TrainResult:
    """Train `variant` on `task` and write `<out_dir>/<variant.name>.weights.h5` plus its JSON record.

    With several `cfg.resolutions`, steps cycle through the sides and `<variant.name>.bn.npz` holds the
    BatchNorm statistics of each; the .weights.h5 carries those of `variant.resolution`.
    """
    import keras
    import tensorflow as tf

    sides = tuple(cfg.resolutions) or (variant.resolution,)
    if variant.resolution not in sides:
        raise PipelineError(f"expected RES among the training resolutions {sides}, received RES={variant.resolution}")
    keras.utils.set_random_seed(cfg.seed)
    start = time.time()
    train_sets = {r: task.labeled_images("train", r, limit=cfg.limit, seed=cfg.seed) for r in sides}
    labels = train_sets[variant.resolution].labels
    pre = {r: task.preprocessing(r, variant.arch) for r in sides}
    model = _initial_model(variant, task, cfg)
    trainer = any_size_view(model) if len(sides) > 1 else model

    n = len(labels)
    mean, std = pre[variant.resolution].mean[0], pre[variant.resolution].std[0]
    per_side = [_dataset(train_sets[r].pixels, labels, cfg, mean, std) for r in sides]
    # Round robin over the sides: every side gets the same number of steps, each step one side.
    ds = tf.data.Dataset.choose_from_datasets(per_side, tf.data.Dataset.range(len(sides)).repeat())
    steps_per_epoch = n // cfg.batch_size
    schedule = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=steps_per_epoch * cfg.epochs,
                                                      alpha=0.01)
    trainer.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay) if cfg.weight_decay
        else keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy", metrics=["accuracy"],
    )
    trainer.fit(ds.prefetch(tf.data.AUTOTUNE), epochs=cfg.epochs, steps_per_epoch=steps_per_epoch, verbose=1)

    rng = np.random.default_rng(cfg.seed)
    bn_index = rng.choice(n, size=min(n, cfg.bn_batches * cfg.batch_size), replace=False)
    bns = build.batchnorm_layers(model)
    statistics, top1 = {}, {}
    for r in sides:
        reestimate_batchnorm(trainer, (pre[r].normalize(train_sets[r].pixels[bn_index[i:i + cfg.batch_size]])
                                       for i in range(0, len(bn_index), cfg.batch_size)))
        for i, layer in enumerate(bns):
            statistics[f"{r}/{i}/mean"] = np.asarray(layer.moving_mean)
            statistics[f"{r}/{i}/variance"] = np.asarray(layer.moving_variance)
        test = task.labeled_images("test", r)
        top1[r] = evaluate_top1(trainer, test.pixels, test.labels, pre[r].normalize)
        log.info("%s at %d px: float top-1 %.2f %% on %d test images", variant.name, r, 100 * top1[r], len(test.labels))
    seconds = time.time() - start

    checkpoint = Path(out_dir) / f"{variant.name}.weights.h5"
    weights_only = build.mobilenet(variant.alpha, variant.resolution, task.num_classes, arch=variant.arch)
    weights_only.set_weights(model.get_weights())  # no optimizer state
    for i, layer in enumerate(build.batchnorm_layers(weights_only)):
        layer.moving_mean.assign(statistics[f"{variant.resolution}/{i}/mean"])
        layer.moving_variance.assign(statistics[f"{variant.resolution}/{i}/variance"])
    if len(sides) > 1:
        with atomic_path(build.batchnorm_file(checkpoint)) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **statistics)
    with atomic_path(checkpoint) as tmp:
        weights_only.save_weights(tmp)
    record = write_json(checkpoint.with_name(f"{variant.name}.json"), {
        "arch": variant.arch, "alpha": variant.alpha, "resolution": variant.resolution,
        "resolutions": list(sides), "task": task.slug, "classes": list(task.class_names),
        "test_top1": top1[variant.resolution], "test_images": int(len(test.labels)), "train_images": int(n),
        "accuracy_by_resolution": {str(r): top1[r] for r in sides},
        "dataset_source": train_sets[variant.resolution].source, "config": asdict(cfg), "seconds": round(seconds, 1),
        "parameters": int(weights_only.count_params()), "tensorflow": tf.__version__, "keras": keras.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "preprocessing": pre[variant.resolution].to_dict(),
    })
    if cfg.resolution_sweep:
        others = [r for r in RESOLUTIONS if r not in sides]
        accuracy_by_resolution(checkpoint, task, others, limit=500)
    return TrainResult(checkpoint, record, top1[variant.resolution], seconds)
