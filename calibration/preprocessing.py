"""The preprocessing contract: what every image goes through before it reaches the model.

The contract is recorded in each variant's manifest (and in the .tflite metadata) so that the
Android side, the on-device runner and `predict` repeat exactly what calibration and validation did.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

RESIZE_METHODS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}


@dataclass(frozen=True)
class Preprocessing:
    """Resize + central crop, then (pixel - mean) / std per RGB channel.

    MobileNet V1 and V2 expect [-1, 1]: mean = std = 127.5; Keras's V3 models rescale inside and take
    0..255 pixels: mean 0, std 1 (pipeline/archs/ holds the values).
    """

    resolution: int
    crop_fraction: float = 0.875
    resize_method: str = "bilinear"
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    color_order: str = "RGB"
    layout: str = "NHWC"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        d["output_range"] = [
            float((0 - self.mean[0]) / self.std[0]),
            float((255 - self.mean[0]) / self.std[0]),
        ]
        return d

    @classmethod
    def from_dict(cls, record: dict) -> "Preprocessing":
        """The contract as recorded in a manifest (`to_dict`'s output; derived keys are ignored)."""
        fields = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        for key in ("mean", "std"):
            if key in fields:
                fields[key] = tuple(float(v) for v in fields[key])
        return cls(**fields)

    def crop_and_resize(self, image: Image.Image) -> np.ndarray:
        """RGB PIL image -> uint8 array (resolution, resolution, 3)."""
        image = image.convert("RGB")
        w, h = image.size
        side = min(w, h) * self.crop_fraction
        left, top = (w - side) / 2, (h - side) / 2
        box = (left, top, left + side, top + side)
        out = image.resize((self.resolution, self.resolution), RESIZE_METHODS[self.resize_method], box=box)
        return np.asarray(out, dtype=np.uint8)

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels (..., 3) -> float32 model input."""
        mean = np.asarray(self.mean, np.float32)
        std = np.asarray(self.std, np.float32)
        return (pixels.astype(np.float32) - mean) / std

    def __call__(self, image: Image.Image) -> np.ndarray:
        return self.normalize(self.crop_and_resize(image))
