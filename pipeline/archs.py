"""The MobileNet family: one registry entry per architecture, the only place that knows their differences.

| arch      | paper                             | alpha (random / own weights) | ImageNet weights (Keras)                   | input        |
|-----------|-----------------------------------|------------------------------|--------------------------------------------|--------------|
| v1        | Howard et al. 2017, 1704.04861    | (0, 1]                       | 0.25 0.5 0.75 1.0 x 128 160 192 224         | [-1, 1]      |
| v2        | Sandler et al. 2018, 1801.04381   | (0, 1.4]                     | 0.35 0.5 0.75 1.0 1.3 1.4 x 96 .. 224       | [-1, 1]      |
| v3-small  | Howard et al. 2019, 1905.02244    | (0, 1]                       | 0.75 1.0, any side (trained at 224)        | 0..255 pixels|
| v3-large  | Howard et al. 2019, 1905.02244    | (0, 1]                       | 0.75 1.0, any side (trained at 224)        | 0..255 pixels|

V1 and V2 expect inputs scaled to [-1, 1] (mean = std = 127.5); Keras's V3 models carry a Rescaling layer
and take raw 0..255 pixels (mean 0, std 1). The preprocessing contract, the calibration range, the TFLite
metadata and `predict` all take the normalisation from here, so a V3 file is never fed [-1, 1] data.
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import PipelineError


@dataclass(frozen=True)
class Arch:
    key: str  # the ARCH value: v1, v2, v3-small, v3-large
    title: str  # "MobileNet V2"
    prefix: str  # file-name prefix of its variants: mobilenet_v2_1.00_224
    max_alpha: float
    imagenet_alphas: tuple[float, ...]
    imagenet_resolutions: tuple[int, ...] | None  # None: the weights load at any side
    mean: float  # normalisation: (pixel - mean) / std
    std: float
    paper: str

    def check_alpha(self, alpha) -> float:
        """alpha as a float within this architecture's range, or a one-line error."""
        try:
            value = float(alpha)
        except (TypeError, ValueError):
            value = float("nan")
        if not 0 < value <= self.max_alpha:
            raise PipelineError(f"expected alpha in (0, {self.max_alpha:g}], received alpha={alpha!r} (ARCH={self.key})")
        return value

    def variant_name(self, alpha: float, resolution: int) -> str:
        return f"{self.prefix}_{alpha_text(alpha)}_{resolution}"

    def keras_model(self, alpha: float, resolution: int, classes: int, weights=None):
        """The plain Keras application (softmax classifier); weights None or 'imagenet'."""
        import keras

        apps = keras.applications
        shape = (resolution, resolution, 3)
        common = dict(input_shape=shape, alpha=alpha, include_top=True, weights=weights, classes=classes,
                      classifier_activation="softmax")
        if self.key == "v1":
            # depth_multiplier is Keras's channels-per-depthwise-filter knob, not the paper's rho: it stays 1.
            return apps.MobileNet(depth_multiplier=1, **common)
        if self.key == "v2":
            return apps.MobileNetV2(**common)
        factory = apps.MobileNetV3Small if self.key == "v3-small" else apps.MobileNetV3Large
        return factory(minimalistic=False, include_preprocessing=True, **common)


ARCHS: dict[str, Arch] = {a.key: a for a in (
    Arch("v1", "MobileNet V1", "mobilenet", 1.0, (0.25, 0.5, 0.75, 1.0), (128, 160, 192, 224), 127.5, 127.5,
         "Howard et al. 2017, arXiv 1704.04861"),
    Arch("v2", "MobileNet V2", "mobilenet_v2", 1.4, (0.35, 0.5, 0.75, 1.0, 1.3, 1.4), (96, 128, 160, 192, 224),
         127.5, 127.5, "Sandler et al. 2018, arXiv 1801.04381"),
    Arch("v3-small", "MobileNet V3-Small", "mobilenet_v3_small", 1.0, (0.75, 1.0), None, 0.0, 1.0,
         "Howard et al. 2019, arXiv 1905.02244"),
    Arch("v3-large", "MobileNet V3-Large", "mobilenet_v3_large", 1.0, (0.75, 1.0), None, 0.0, 1.0,
         "Howard et al. 2019, arXiv 1905.02244"),
)}


def alpha_text(alpha: float) -> str:
    """alpha as names show it: two decimals (0.25, 1.00), or every digit when two would round it (0.251).

    Two alphas must never share a name: their folders, files and checkpoints would overwrite each other.
    """
    short = f"{alpha:.2f}"
    return short if float(short) == float(alpha) else repr(float(alpha))


def get_arch(key: str) -> Arch:
    try:
        return ARCHS[key]
    except KeyError:
        raise PipelineError(f"expected ARCH to be one of {', '.join(ARCHS)}, received ARCH={key!r}") from None


def arch_of_name(name: str) -> Arch:
    """The architecture of a variant or checkpoint name (mobilenet_v2_1.00_64 -> v2)."""
    for arch in sorted(ARCHS.values(), key=lambda a: -len(a.prefix)):
        if name.startswith(arch.prefix + "_"):
            return arch
    raise PipelineError(f"expected a MobileNet variant name like mobilenet_v2_1.00_224, received {name!r}")
