"""Stage 1 — build: a Keras MobileNet V1 at width multiplier alpha and input side RES.

The paper's resolution multiplier rho sets the *input size* (RES = 224 * rho). Keras's
`depth_multiplier` is a different knob (channels per depthwise filter) and stays 1.
"""
from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

from pipeline.config import Variant
from pipeline.errors import PipelineError

log = logging.getLogger(__name__)

IMAGENET_ALPHAS = (0.25, 0.5, 0.75, 1.0)
IMAGENET_RESOLUTIONS = (128, 160, 192, 224)
CHECKPOINTS = Path(__file__).with_name("checkpoints")
DOWNLOAD_TIMEOUT_S = 20


def reference_checkpoint(task_kind: str, alpha: float) -> Path:
    """The committed checkpoint trained by `pipeline.train` for this task and alpha."""
    folder = CHECKPOINTS / task_kind
    found = sorted(folder.glob(f"mobilenet_{alpha:.2f}_*.weights.h5")) if folder.is_dir() else []
    if not found:
        have = sorted({p.name.split("_")[1] for p in folder.glob("*.weights.h5")}) if folder.is_dir() else []
        raise PipelineError(
            f"expected a reference checkpoint for task {task_kind} at alpha in {{{', '.join(have) or 'none'}}}, "
            f"received alpha={alpha}; train one with `make train ALPHA={alpha}` or pass WEIGHTS=random|<file>"
        )
    return found[0]


def checkpoint_info(checkpoint: Path) -> dict:
    """The training record stored next to a checkpoint (accuracy, resolution, epochs...), if any."""
    meta = checkpoint.with_name(checkpoint.name.replace(".weights.h5", ".json"))
    return json.loads(meta.read_text()) if meta.is_file() else {}


def mobilenet(alpha: float, resolution: int, classes: int, weights=None):
    """The plain Keras application; weights None or 'imagenet'."""
    import keras

    # Tensor names are numbered per process; a fresh session keeps converted files byte-identical across runs.
    keras.utils.clear_session()
    return keras.applications.MobileNet(
        input_shape=(resolution, resolution, 3), alpha=alpha, depth_multiplier=1,
        include_top=True, weights=weights, classes=classes, classifier_activation="softmax",
    )


def _imagenet_model(variant: Variant, classes: int):
    if classes != 1000:
        raise PipelineError(f"expected a 1000-class task for WEIGHTS=imagenet, received {classes} classes")
    if variant.alpha not in IMAGENET_ALPHAS or variant.resolution not in IMAGENET_RESOLUTIONS:
        raise PipelineError(
            f"expected alpha in {IMAGENET_ALPHAS} and RES in {IMAGENET_RESOLUTIONS} for ImageNet weights, "
            f"received alpha={variant.alpha}, RES={variant.resolution}; use WEIGHTS=random or a weights file"
        )
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # offline machines must fail fast, not hang
    try:
        return mobilenet(variant.alpha, variant.resolution, classes, weights="imagenet")
    except Exception as exc:  # urllib, HTTP and OS errors all mean "not obtainable here"
        raise PipelineError(
            f"expected ImageNet weights for {variant.name} (download or ~/.keras cache), received "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else 'no detail'}; alternatives: "
            "WEIGHTS=<.keras/.h5/.weights.h5 file>, WEIGHTS=random, or the offline reference task TASK=fashion-mnist"
        ) from None
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
            import keras

            source = keras.models.load_model(path, compile=False)
            model.set_weights(source.get_weights())
        else:
            model.load_weights(path)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise PipelineError(
            f"expected weights of MobileNet V1 alpha={variant.alpha} with {model.output_shape[-1]} classes, "
            f"received {path.name} that does not fit ({first})"
        ) from None


def build_model(variant: Variant, classes: int):
    """Return the Keras model for `variant` with `classes` outputs and its weights loaded.

    `variant.weights`: 'imagenet', 'random', 'reference' (the committed checkpoint for the task), or a path.
    """
    if variant.weights == "imagenet":
        return _imagenet_model(variant, classes)
    model = mobilenet(variant.alpha, variant.resolution, classes, weights=None)
    if variant.weights == "random":
        return model
    path = reference_checkpoint(variant.task, variant.alpha) if variant.weights == "reference" else Path(variant.weights)
    load_weights_file(model, path, variant)
    return model


def weights_path(variant: Variant) -> Path | None:
    if variant.weights == "reference":
        return reference_checkpoint(variant.task, variant.alpha)
    if variant.weights in ("imagenet", "random"):
        return None
    return Path(variant.weights)
