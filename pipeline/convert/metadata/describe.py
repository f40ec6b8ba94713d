"""What the metadata says about a model (ModelInfo), from a variant's manifest records or its build inputs."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mobilenet_edge.pipeline.archs import get_arch
from mobilenet_edge.pipeline.errors import PipelineError

log = logging.getLogger(__name__)

LABELS_FILE = "labels.txt"


@dataclass(frozen=True)
class ModelInfo:
    """What the metadata says about a model: identity, the preprocessing contract, the labels.

    `mean`/`std` (per RGB channel, or one value for all) describe float input = (pixel - mean) / std
    for pixels in [input_min, input_max]; MobileNet V1 uses mean = std = 127.5, i.e. [-1, 1].
    `labels` are the class names in class-index order. `provenance` (training, calibration) is
    appended to the description.
    """

    name: str
    labels: tuple[str, ...]
    description: str = ""
    version: str = ""
    author: str = "mobilenet-edge"
    license: str = "Apache-2.0"
    mean: tuple[float, ...] = (127.5, 127.5, 127.5)
    std: tuple[float, ...] = (127.5, 127.5, 127.5)
    input_min: float = 0.0
    input_max: float = 255.0
    provenance: str = ""

    def __post_init__(self):
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        if not self.name:
            raise PipelineError(f"expected a model name, received {self.name!r}")
        if not self.labels or any(not str(l).strip() or "\n" in str(l) for l in self.labels):
            raise PipelineError(f"expected one non-empty single-line label per class, received {self.labels!r}")
        # The Task Library accepts 1 or 3 normalisation values (GetNormalizationOptionsIfAny).
        if len(self.mean) not in (1, 3) or len(self.std) != len(self.mean):
            raise PipelineError(
                f"expected 1 or 3 mean and as many std values, received mean={self.mean}, std={self.std}")
        if min(self.std) <= 0:
            raise PipelineError(f"expected std > 0, received std={self.std}")
        if not self.input_min < self.input_max:
            raise PipelineError(f"expected input_min < input_max, received {self.input_min} and {self.input_max}")

    @property
    def full_description(self) -> str:
        return " ".join(part.strip() for part in (self.description, self.provenance) if part.strip())

    @property
    def labels_text(self) -> str:
        return "\n".join(self.labels) + "\n"


def model_info(variant: dict, preprocessing: dict, calibration: dict | None = None) -> ModelInfo:
    """The metadata of one variant from its manifest records (`variant`, `preprocessing`, `calibration`).

    The provenance names files, not folders, so the bytes do not depend on where a checkout or a data set
    lives; the training record beside a weights file (pipeline.train writes one) is summarised if present.
    """
    side = f"{variant['resolution']}x{variant['resolution']}"
    title = get_arch(variant.get("arch", "v1")).title
    description = (f"{title} (alpha={variant['alpha']}, {side} RGB input) classifying {variant['task']} "
                   f"into {len(variant['class_names'])} classes.")
    kind = variant.get("weights") if variant.get("weights") in ("reference", "imagenet", "random") else "file"
    weights = f"Weights: {kind}"
    if variant.get("weights_sha256"):
        weights += f" ({Path(variant['weights_file']).name}, sha256 {variant['weights_sha256'][:12]})"
    provenance = [weights + "."]
    training = _training_record(variant.get("weights_file"))
    if training.get("test_top1") is not None:
        epochs = training.get("config", {}).get("epochs")
        provenance.append(f"Trained {epochs} epochs on {training.get('train_images')} images; "
                          f"test top-1 {training['test_top1']:.1%} on {training.get('test_images')}.")
    if calibration and calibration["source"].startswith("synthetic"):
        # Data-free: an app developer should know no real image set the ranges.
        provenance.append(f"Int8 calibration: {calibration['count']} {calibration['source']}, seed "
                          f"{calibration['seed']}, sha256 {calibration['sha256'][:12]}; real images calibrate better.")
    elif calibration:
        provenance.append(f"Int8 calibration: {calibration['count']} images from {Path(calibration['source']).name}, "
                          f"seed {calibration['seed']}, sample list sha256 {calibration['sha256'][:12]}.")
    provenance.append(f"Preprocessing: central crop {preprocessing['crop_fraction']}, {preprocessing['resize_method']} "
                      f"resize to {side}, then (pixel - mean) / std, mean {numbers_text(preprocessing['mean'])}, "
                      f"std {numbers_text(preprocessing['std'])}.")
    return ModelInfo(
        name=variant["name"], labels=tuple(variant["class_names"]), description=description,
        version=(variant.get("weights_sha256") or kind)[:12],
        mean=tuple(preprocessing["mean"]), std=tuple(preprocessing["std"]), provenance=" ".join(provenance),
    )


def _training_record(weights_file: str | None) -> dict:
    from mobilenet_edge.pipeline.build import checkpoint_info

    try:
        return checkpoint_info(Path(weights_file)) if weights_file and Path(weights_file).is_file() else {}
    except (OSError, ValueError, KeyError) as exc:  # the record is provenance only: the file is still right
        log.warning("training record beside %s not read (%s): the metadata omits the training summary",
                    weights_file, exc)
        return {}


def numbers_text(values) -> str:
    return str(values[0]) if len(set(values)) == 1 else str(list(values))
