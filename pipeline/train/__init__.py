"""Stage 0 — train: a MobileNet (any ARCH) on a labelled task, from scratch or transferred from any backbone.

Transfer (`init`): ImageNet weights, the reference checkpoint, or any checkpoint or .keras model of the same
arch and alpha whatever its classes; the head is replaced (pipeline.train.transfer). A user's folder of photos
is checked first (calibration.folder_checks) and trained as small datasets need (pipeline.train.finetune:
frozen backbone then end to end, augmentation, balanced sampling, early stopping on the val split).

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
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mobilenet_edge.calibration.folder_checks import check_folder
from mobilenet_edge.calibration.tasks import Task
from mobilenet_edge.pipeline import build
from mobilenet_edge.pipeline.artifacts import atomic_path, write_json
from mobilenet_edge.pipeline.config import ANDROID_EPOCHS, FOLDER_HEAD_EPOCHS, TrainConfig, Variant
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.train.finetune import dataset, fit, set_backbone_trainable
from mobilenet_edge.pipeline.train.transfer import head_layers, initial_model

log = logging.getLogger(__name__)





@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    record: Path
    test_top1: float
    seconds: float


def small_data(task: Task, init: str, **overrides) -> dict:
    """TrainConfig settings (init and `overrides` included) for a user's folder of photos (see pipeline.train.finetune;
    its epochs: config.FOLDER_HEAD_EPOCHS frozen, then config.ANDROID_EPOCHS end to end); only `init` and
    `overrides` for the reference tasks."""
    if task.kind != "folder":
        return {"init": init, **overrides}
    return {"init": init, "augment": "photo", "balanced": True, "patience": 5, "batch_size": 16, "learning_rate": 5e-3,
            "fine_tune_lr": 1e-3, "epochs": ANDROID_EPOCHS, "head_epochs": FOLDER_HEAD_EPOCHS if init != "random" else 0,
            **overrides}


def _initial_model(variant: Variant, task: Task, cfg: TrainConfig):
    model, transfer = initial_model(variant, task.class_names, cfg.init)
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            layer.momentum = cfg.bn_momentum
    return model, transfer


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


@contextmanager
def seeded(seed: int):
    """Seed Python, numpy and TensorFlow, and make TensorFlow's ops deterministic while inside.

    The seed alone is not enough: multi-threaded CPU kernels and tf.data reduce in varying orders, and a
    small folder task trained twice from seed 0 ended between 72 % and 96 % top-1. With deterministic ops
    (no slower here) the same seed gives the same checkpoint on the same machine and library versions.
    The process-wide switch is put back afterwards so that a caller's later work is unaffected.
    """
    import keras
    from tensorflow.python.framework import config as tf_config  # the switch's getter and disable are not public

    was_enabled = tf_config.is_op_determinism_enabled()
    keras.utils.set_random_seed(seed)
    tf_config.enable_op_determinism()
    try:
        yield
    finally:
        if not was_enabled:
            tf_config.disable_op_determinism()


def train(variant: Variant, task: Task, cfg: TrainConfig, out_dir: Path) -> TrainResult:
    """Train `variant` on `task` and write `<out_dir>/<variant.name>.weights.h5` plus its JSON record.

    With several `cfg.resolutions`, steps cycle through the sides and `<variant.name>.bn.npz` holds the
    BatchNorm statistics of each; the .weights.h5 carries those of `variant.resolution`.
    Deterministic: the same `cfg.seed` gives the same weights (see `seeded`).
    """
    with seeded(cfg.seed):
        return _train(variant, task, cfg, out_dir)


def _train(variant: Variant, task: Task, cfg: TrainConfig, out_dir: Path) -> TrainResult:
    import keras
    import tensorflow as tf

    sides = tuple(cfg.resolutions) or (variant.resolution,)
    if variant.resolution not in sides:
        raise PipelineError(f"expected RES among the training resolutions {sides}, received RES={variant.resolution}")
    start, cpu_start = time.time(), time.process_time()
    # 0. the data, checked before any training (folder tasks): one log line per problem
    data_check = None
    if task.kind == "folder":
        data_check = check_folder(task.name, variant.resolution)
        for problem in data_check.problems:
            log.warning("data: %s", problem)
    train_sets = {r: task.labeled_images("train", r, limit=cfg.limit, seed=cfg.seed) for r in sides}
    labels = train_sets[variant.resolution].labels
    pre = {r: task.preprocessing(r, variant.arch) for r in sides}
    model, transfer = _initial_model(variant, task, cfg)
    trainer = any_size_view(model) if len(sides) > 1 else model

    n = len(labels)
    mean, std = pre[variant.resolution].mean[0], pre[variant.resolution].std[0]
    per_side = [dataset(train_sets[r].pixels, labels, cfg.batch_size, cfg.seed, mean, std, cfg.augment, cfg.balanced)
                for r in sides]
    # Round robin over the sides: every side gets the same number of steps, each step one side.
    ds = tf.data.Dataset.choose_from_datasets(per_side, tf.data.Dataset.range(len(sides)).repeat())
    ds = ds.prefetch(tf.data.AUTOTUNE)
    steps_per_epoch = max(1, n // cfg.batch_size)
    validation = None
    if task.kind == "folder" and cfg.patience and not data_check.split["val"]["images"]:
        log.warning("data: no image in the val split, so no early stopping (see calibration.tasks.SPLIT_RULE)")
    elif task.kind == "folder" and cfg.patience:
        val = task.labeled_images("val", variant.resolution)
        validation = (pre[variant.resolution].normalize(val.pixels), val.labels)
    rng = np.random.default_rng(cfg.seed)
    bn_index = rng.choice(n, size=min(n, cfg.bn_batches * cfg.batch_size), replace=False)

    def bn_batches(r):
        return (pre[r].normalize(train_sets[r].pixels[bn_index[i:i + cfg.batch_size]])
                for i in range(0, len(bn_index), cfg.batch_size))

    phases = {}
    if cfg.linear_probe and not transfer.head_replaced:
        raise PipelineError(f"expected a transferred backbone with a new head for a linear probe, received "
                            f"INIT={cfg.init} (head replaced: {transfer.head_replaced})")
    if transfer.head_replaced and (cfg.head_epochs or cfg.linear_probe):
        # 1. the new head learns on frozen features, normalised with statistics of these images
        reestimate_batchnorm(trainer, bn_batches(variant.resolution))
        head = {layer.name for layer in head_layers(model)}
        set_backbone_trainable(model, False, head)
        phases["head"] = fit(trainer, ds, steps_per_epoch, cfg.epochs if cfg.linear_probe else cfg.head_epochs,
                             cfg.learning_rate, cfg.weight_decay, validation, cfg.patience)
        if not cfg.linear_probe:  # a linear probe keeps the backbone frozen: its BatchNorm statistics stay too
            set_backbone_trainable(model, True, head)
    if not cfg.linear_probe:
        # 2. end to end (a transferred backbone at the lower fine-tuning rate)
        rate = cfg.fine_tune_lr if cfg.fine_tune_lr and transfer.init != "random" else cfg.learning_rate
        phases["end_to_end"] = fit(trainer, ds, steps_per_epoch, cfg.epochs, rate, cfg.weight_decay, validation,
                                   cfg.patience)

    bns = build.batchnorm_layers(model)
    statistics, top1 = {}, {}
    for r in sides:
        reestimate_batchnorm(trainer, bn_batches(r))
        for i, layer in enumerate(bns):
            statistics[f"{r}/{i}/mean"] = np.asarray(layer.moving_mean)
            statistics[f"{r}/{i}/variance"] = np.asarray(layer.moving_variance)
        test = task.labeled_images("test", r)
        top1[r] = evaluate_top1(trainer, test.pixels, test.labels, pre[r].normalize)
        log.info("%s at %d px: float top-1 %.2f %% on %d test images", variant.name, r, 100 * top1[r], len(test.labels))
    seconds, cpu_seconds = time.time() - start, time.process_time() - cpu_start

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
        "cpu_seconds": round(cpu_seconds, 1), "transfer": transfer.to_dict(), "phases": phases,
        **({"data_check": data_check.to_dict(), "data_sha256": data_check.content_sha256} if data_check else {}),
        "parameters": int(weights_only.count_params()), "tensorflow": tf.__version__, "keras": keras.__version__,
        "deterministic_ops": True,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "preprocessing": pre[variant.resolution].to_dict(),
    })
    if cfg.resolution_sweep:
        others = [r for r in RESOLUTIONS if r not in sides]
        accuracy_by_resolution(checkpoint, task, others, limit=500)
    return TrainResult(checkpoint, record, top1[variant.resolution], seconds)
