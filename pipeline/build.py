"""Stage 1 — build: a Keras MobileNet (any registry entry, pipeline/archs/) at width multiplier alpha and input side RES.

The paper's resolution multiplier rho sets the *input size* (RES = 224 * rho). Keras's
`depth_multiplier` is a different knob (channels per depthwise filter) and stays 1.

Reference checkpoints trained at several input sides carry BatchNorm statistics per side
(`<name>.bn.npz`): the convolution weights are shared, but activation statistics of a 32 px and a 96 px
input differ, so the model built for one side gets the statistics measured at that side.
"""
from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import numpy as np

from mobilenet_edge.pipeline.archs import alpha_text, get_arch
from mobilenet_edge.pipeline.config import Variant
from mobilenet_edge.pipeline.errors import PipelineError

log = logging.getLogger(__name__)

CHECKPOINTS = Path(__file__).with_name("checkpoints")
DOWNLOAD_TIMEOUT_S = 20


def reference_checkpoint(task_kind: str, alpha: float, arch: str = "v1") -> Path:
    """The committed checkpoint trained by `pipeline.train` for this task, architecture and alpha."""
    folder = CHECKPOINTS / task_kind
    prefix = get_arch(arch).prefix
    found = sorted(folder.glob(f"{prefix}_{alpha_text(alpha)}_*.weights.h5")) if folder.is_dir() else []
    if not found:
        have = sorted(f"{r['arch']} {r['alpha']:.2f}" for r in reference_records(task_kind))
        raise PipelineError(
            f"expected a reference checkpoint for task {task_kind} (have: {', '.join(have) or 'none'}), "
            f"received ARCH={arch} alpha={alpha}; train one with `make train ARCH={arch} ALPHA={alpha}` "
            "or pass WEIGHTS=random|<file>"
        )
    return found[0]


def reference_records(task_kind: str) -> list[dict]:
    """The training records of every committed checkpoint of a task, each with its "checkpoint" path."""
    folder = CHECKPOINTS / task_kind
    records = []
    for path in sorted(folder.glob("*.weights.h5")) if folder.is_dir() else []:
        record = checkpoint_info(path)
        records.append({"arch": "v1", **record, "checkpoint": path})
    return records


def trained_resolutions(record: dict) -> list[int]:
    """The input sides a checkpoint was trained at (older records name one)."""
    return list(record.get("resolutions") or [record["resolution"]]) if record else []


def checkpoint_info(checkpoint: Path) -> dict:
    """The training record stored next to a checkpoint (accuracy, resolution, epochs...), if any."""
    meta = checkpoint.with_name(checkpoint.name.replace(".weights.h5", ".json"))
    return json.loads(meta.read_text()) if meta.is_file() else {}


def batchnorm_file(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.name.replace(".weights.h5", ".bn.npz"))


def mobilenet(alpha: float, resolution: int, classes: int, weights=None, arch: str = "v1"):
    """The plain Keras application of `arch`; weights None or 'imagenet'."""
    import keras

    # Tensor names are numbered per process; a fresh session keeps converted files byte-identical across runs.
    keras.utils.clear_session()
    return get_arch(arch).keras_model(alpha, resolution, classes, weights=weights)


def _imagenet_model(variant: Variant, classes: int):
    arch = get_arch(variant.arch)
    if classes != 1000:
        raise PipelineError(f"expected a 1000-class task for WEIGHTS=imagenet, received {classes} classes")
    if not arch.imagenet_alphas:
        raise PipelineError(f"expected an architecture with ImageNet weights in Keras for WEIGHTS=imagenet, received "
                            f"ARCH={arch.key} ({arch.title} has none); use WEIGHTS=random, reference or a weights file")
    sizes = arch.imagenet_resolutions
    if variant.alpha not in arch.imagenet_alphas or (sizes and variant.resolution not in sizes):
        raise PipelineError(
            f"expected alpha in {arch.imagenet_alphas}{f' and RES in {sizes}' if sizes else ''} for {arch.title} "
            f"ImageNet weights, received alpha={variant.alpha}, RES={variant.resolution}; "
            "use WEIGHTS=random or a weights file"
        )
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # offline machines must fail fast, not hang
    try:
        return mobilenet(variant.alpha, variant.resolution, classes, weights="imagenet", arch=variant.arch)
    except Exception as exc:  # urllib, HTTP and OS errors all mean "not obtainable here"
        raise PipelineError(
            f"expected ImageNet weights for {variant.name} (download or ~/.keras cache), received "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else 'no detail'}; alternatives: "
            "WEIGHTS=<.keras/.h5/.weights.h5 file>, WEIGHTS=random, or the offline reference task TASK=fashion-mnist"
        ) from exc
    finally:
        socket.setdefaulttimeout(previous)


def load_weights_file(model, path: Path, variant: Variant) -> None:
    """Load a .weights.h5/.h5 (weights) or .keras (whole model, weights transferred) into `model`."""
    if not path.is_file():
        raise PipelineError(f"expected WEIGHTS to be imagenet, random or an existing file, received {str(path)!r}")
    if path.suffix not in (".h5", ".keras"):
        raise PipelineError(f"expected a .keras, .h5 or .weights.h5 weights file, received {path.name!r}")
    try:
        if path.suffix == ".keras":
            from mobilenet_edge.pipeline.validate.runtimes import load_keras

            source = load_keras(path)  # a file that is no Keras archive is said so, not "File not found"
            model.set_weights(source.get_weights())
        else:
            model.load_weights(path)
    except PipelineError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise PipelineError(
            f"expected weights of {get_arch(variant.arch).title} alpha={variant.alpha} with {model.output_shape[-1]} classes, "
            f"received {path.name} that does not fit ({first})"
        ) from exc


def build_model(variant: Variant, classes: int):
    """Return the Keras model for `variant` with `classes` outputs and its weights loaded.

    `variant.weights`: 'imagenet', 'random', 'reference' (the committed checkpoint for the task), or a path.
    """
    if variant.weights == "imagenet":
        return _imagenet_model(variant, classes)
    model = mobilenet(variant.alpha, variant.resolution, classes, weights=None, arch=variant.arch)
    if variant.weights == "random":
        return model
    path = weights_path(variant)
    load_weights_file(model, path, variant)
    load_batchnorm_statistics(model, path, variant.resolution)
    return model


def batchnorm_layers(model) -> list:
    return [layer for layer in model.layers if layer.__class__.__name__ == "BatchNormalization"]


def load_batchnorm_statistics(model, checkpoint: Path, resolution: int) -> bool:
    """Set the moving mean/variance measured at `resolution`, if the checkpoint carries them (see module doc)."""
    path = batchnorm_file(checkpoint)
    if not path.is_file():
        return False
    with np.load(path) as stats:
        if f"{resolution}/0/mean" not in stats:
            return False
        for i, layer in enumerate(batchnorm_layers(model)):
            layer.moving_mean.assign(stats[f"{resolution}/{i}/mean"])
            layer.moving_variance.assign(stats[f"{resolution}/{i}/variance"])
    log.info("BatchNorm statistics of %s measured at %d px", checkpoint.name, resolution)
    return True


def weights_path(variant: Variant) -> Path | None:
    if variant.weights == "reference":
        return reference_checkpoint(variant.task, variant.alpha, variant.arch)
    if variant.weights in ("imagenet", "random"):
        return None
    return Path(variant.weights)
