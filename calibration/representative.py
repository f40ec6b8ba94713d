"""Stage 3 — calibrate: the representative samples that set int8 ranges (TFLite and ONNX alike).

Drawn from CALIB (a folder of images, recursive) or from the task's own training split — never from the
held-out images that validation uses.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from calibration.images import find_images
from calibration.tasks import LabeledImages, Task, read_images
from pipeline.errors import PipelineError

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

    def __len__(self) -> int:
        return len(self.pixels)

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
        return {"source": self.source, "count": int(len(self.pixels)), "seed": self.seed,
                "skipped": self.skipped, "sha256": self.digest}


def calibration_set(task: Task, resolution: int, num_samples: int = 200, seed: int = 0,
                    calib_dir: str | None = None, progress: bool = True, arch: str = "v1") -> CalibrationSet:
    """`num_samples` images, chosen with `seed`, cropped, resized and normalised per the task's contract."""
    pre = task.preprocessing(resolution, arch)
    if calib_dir:
        files = find_images(calib_dir)
        rng = np.random.default_rng(seed)
        chosen = sorted(rng.choice(len(files), size=min(num_samples, len(files)), replace=False))
        images: LabeledImages = read_images([files[i] for i in chosen], pre, source=str(calib_dir), progress=progress)
        if images.skipped:
            log.warning("calibration: %d of %d files could not be decoded and were skipped", images.skipped, len(chosen))
    elif task.kind == "imagenet":
        raise PipelineError(
            "expected CALIB=<folder of images> for TASK=imagenet (no ImageNet images offline), received none"
        )
    else:
        images = task.labeled_images("train", resolution, limit=num_samples, seed=seed, progress=progress)
    low, high = pre.to_dict()["output_range"]
    return CalibrationSet(images.pixels, pre.normalize, images.source, images.digest, images.skipped, seed, (low, high))
