"""The MobileNet family: one registry entry per architecture, the only place that knows their differences.

An entry carries what every stage needs: names, the alpha range, the ImageNet weights Keras has, the
input normalisation, the keras.applications factory and its options, and the cost function
(pipeline/cost/). A new family member is one entry here plus its cost module.

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
from functools import partial
from typing import Callable

from mobilenet_edge.pipeline.cost.v1 import cost_v1
from mobilenet_edge.pipeline.cost.v2 import cost_v2
from mobilenet_edge.pipeline.cost.v3 import cost_v3
from mobilenet_edge.pipeline.errors import PipelineError


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
    keras_factory: str  # the keras.applications function that builds it
    keras_options: tuple[tuple[str, object], ...]  # its arguments beyond the common ones
    cost: Callable  # (alpha, resolution, classes) -> the cost report (pipeline/cost/), inputs already checked
    short_title: str  # "V3-Small", for tables and plot legends
    marker: str  # its matplotlib marker in the report's plots

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

        factory = getattr(keras.applications, self.keras_factory)
        return factory(input_shape=(resolution, resolution, 3), alpha=alpha, include_top=True, weights=weights,
                       classes=classes, classifier_activation="softmax", **dict(self.keras_options))


# V3: the full (not "minimalistic") models with their Rescaling layer, so they take 0..255 pixels.
V3_OPTIONS = (("minimalistic", False), ("include_preprocessing", True))

# One entry per family member, in the order tables list them.
ARCHS: dict[str, Arch] = {a.key: a for a in (
    Arch("v1", "MobileNet V1", "mobilenet", 1.0, (0.25, 0.5, 0.75, 1.0), (128, 160, 192, 224), 127.5, 127.5,
         "Howard et al. 2017, arXiv 1704.04861", "MobileNet",
         # depth_multiplier is Keras's channels-per-depthwise-filter knob, not the paper's rho: it stays 1.
         (("depth_multiplier", 1),), cost_v1, "V1", "o"),
    Arch("v2", "MobileNet V2", "mobilenet_v2", 1.4, (0.35, 0.5, 0.75, 1.0, 1.3, 1.4), (96, 128, 160, 192, 224),
         127.5, 127.5, "Sandler et al. 2018, arXiv 1801.04381", "MobileNetV2", (), cost_v2, "V2", "s"),
    Arch("v3-small", "MobileNet V3-Small", "mobilenet_v3_small", 1.0, (0.75, 1.0), None, 0.0, 1.0,
         "Howard et al. 2019, arXiv 1905.02244", "MobileNetV3Small", V3_OPTIONS, partial(cost_v3, "v3-small"),
         "V3-Small", "^"),
    Arch("v3-large", "MobileNet V3-Large", "mobilenet_v3_large", 1.0, (0.75, 1.0), None, 0.0, 1.0,
         "Howard et al. 2019, arXiv 1905.02244", "MobileNetV3Large", V3_OPTIONS, partial(cost_v3, "v3-large"),
         "V3-Large", "D"),
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
