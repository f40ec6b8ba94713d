"""Stage 3 — calibrate: the representative samples that set int8 ranges (TFLite and ONNX alike).

Drawn from CALIB (a folder of images, recursive) or from the task's own training split — never from the
held-out images that validation uses. Without images (TASK=imagenet and no CALIB, or CALIB=synthetic) the
samples are synthesised from the model's BatchNorm statistics (calibration/synthetic.py).
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mobilenet_edge.calibration.images import find_images
from mobilenet_edge.calibration.synthetic import SOURCE as SYNTHETIC, SyntheticConfig, synthetic_pixels
from mobilenet_edge.calibration.tasks import LabeledImages, Task, read_images
from mobilenet_edge.pipeline.errors import PipelineError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationSet:
    """The calibration images as uint8 pixels (N, R, R, 3), normalised to float32 one sample at a time as they
    are read, plus where they came from.

    Streaming the float32 form keeps a fifth of the memory (1 byte a value, not 1 + 4), and the TFLite and ONNX
    calibrators each read the samples once, in order.
    """

    pixels: np.ndarray
    normalize: Callable[[np.ndarray], np.ndarray]  # the preprocessing contract: uint8 pixels -> float32 input
    source: str
    digest: str  # sha256 of the sorted sample list: same digest, same calibration
    skipped: int
    seed: int

    value_range: tuple[float, float] = (-1.0, 1.0)  # the preprocessing contract's output range
    requested: int | None = None  # N when fewer images were there (a cut is recorded, never silent)

    def __len__(self) -> int:
        return len(self.pixels)

    @classmethod
    def from_samples(cls, samples: np.ndarray, source: str, digest: str, skipped: int = 0, seed: int = 0,
                     value_range: tuple[float, float] = (-1.0, 1.0)) -> "CalibrationSet":
        """A set of samples that are already model inputs (float32): benchmarks and tests make their own."""
        return cls(np.asarray(samples, np.float32), _as_float32, source, digest, skipped, seed, value_range)

    def head(self, count: int) -> np.ndarray:
        """The first `count` samples, float32 (count, R, R, 3)."""
        return self.normalize(self.pixels[:count])

    def iter_samples(self):
        """Every sample, float32 (R, R, 3), normalised as it is read."""
        for pixels in self.pixels:
            yield self.normalize(pixels)

    @property
    def samples(self) -> np.ndarray:
        """Every sample at once, float32 (N, R, R, 3): for small sets and tests; the pipeline streams them."""
        return self.normalize(self.pixels)

    def samples_sha256(self) -> str:
        """sha256 of the float32 samples' bytes (the same as of `samples.tobytes()`), computed as they stream."""
        h = hashlib.sha256()
        for sample in self.iter_samples():
            h.update(np.ascontiguousarray(sample).tobytes())
        return h.hexdigest()

    def batches(self):
        """Yield one-image batches, the form TFLiteConverter.representative_dataset expects.

        The first image gets one black and one white corner pixel: that pins the model input's int8 range
        to the contract's full range, so a uint8 input takes raw pixels exactly (as Android feeds them)
        even when the calibration images are dark, low-contrast or few.
        """
        for i, sample in enumerate(self.iter_samples()):
            if i == 0:
                sample = sample.copy()
                sample[0, 0, :], sample[-1, -1, :] = self.value_range
            yield [sample[None]]

    def to_dict(self) -> dict:
        record = {"source": self.source, "count": int(len(self.pixels)), "seed": self.seed,
                  "skipped": self.skipped, "sha256": self.digest}
        if self.requested is not None:
            record["requested"] = self.requested
        return record


def _as_float32(samples: np.ndarray) -> np.ndarray:
    return np.asarray(samples, np.float32)


def uses_synthetic(task: Task, calib_dir: str | None) -> bool:
    """CALIB=synthetic, or TASK=imagenet with no CALIB: there are no ImageNet images offline."""
    return calib_dir == SYNTHETIC or (not calib_dir and task.kind == "imagenet")


def calibration_set(task: Task, resolution: int, num_samples: int = 200, seed: int = 0,
                    calib_dir: str | None = None, progress: bool = True, arch: str = "v1", model=None,
                    synthetic: SyntheticConfig = SyntheticConfig(), cache_dir=None) -> CalibrationSet:
    """`num_samples` images, chosen with `seed`, cropped, resized and normalised per the task's contract.

    When `uses_synthetic(task, calib_dir)`, `model` (the float Keras model) is required and the samples are
    ZeroQ inputs optimised with `synthetic` (cached under `cache_dir`, default ~/.cache/mobilenet-edge).
    """
    pre = task.preprocessing(resolution, arch)
    low, high = pre.to_dict()["output_range"]
    if uses_synthetic(task, calib_dir):
        if model is None:
            raise PipelineError("expected CALIB=<folder of images> (or the float model, for synthetic calibration), "
                                f"received no images for TASK={task.name}")
        made = synthetic_pixels(model, pre, num_samples, seed, synthetic, cache_dir, progress)
        log.warning("int8 calibrated on %d synthetic samples made from the model's BatchNorm statistics (data-free); "
                    "real images calibrate better: CALIB=<folder of images>", num_samples)
        source = f"synthetic (ZeroQ: BatchNorm statistics of the model, {synthetic.steps} steps)"
        return CalibrationSet(made.pixels, pre.normalize, source, made.key, 0, seed, (low, high))
    if calib_dir:
        files = find_images(calib_dir)
        rng = np.random.default_rng(seed)
        chosen = sorted(rng.choice(len(files), size=min(num_samples, len(files)), replace=False))
        images: LabeledImages = read_images([files[i] for i in chosen], pre, source=str(calib_dir), progress=progress)
        if images.skipped:
            log.warning("calibration: %d of %d files could not be decoded and were skipped", images.skipped, len(chosen))
    else:
        images = task.labeled_images("train", resolution, limit=num_samples, seed=seed, progress=progress)
    requested = None
    if len(images.pixels) < num_samples:
        requested = num_samples
        log.warning("calibration: N=%d asked for more images than %s holds: calibrated on %d (recorded as the "
                    "calibration's count)", num_samples, images.source or calib_dir, len(images.pixels))
    return CalibrationSet(images.pixels, pre.normalize, images.source, images.digest, images.skipped, seed, (low, high),
                          requested)
