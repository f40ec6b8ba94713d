"""The registry entry: everything a stage needs to know about one architecture, in keyword fields.

Shared by every member module (archs/v1.py ... v4.py) and by the registry (archs/__init__.py); it imports
neither, so the members never import the registry back.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from mobilenet_edge.pipeline.errors import PipelineError


@dataclass(frozen=True, kw_only=True)
class Arch:
    key: str  # the ARCH value: v1, v2, v3-small, v3-large, v4-conv-s ...
    title: str  # "MobileNet V2"
    short_title: str  # "V3-Small", for tables and plot legends
    prefix: str  # file-name prefix of its variants: mobilenet_v2_1.00_224
    paper: str
    # (alpha, resolution, classes, weights=None|'imagenet') -> the Keras model with a softmax classifier
    factory: Callable
    # (alpha, resolution, classes) -> the cost report (pipeline/cost/), inputs already checked
    cost: Callable
    max_alpha: float  # alpha allowed in (0, max_alpha] with random or own weights
    imagenet_alphas: tuple[float, ...]  # the alphas Keras has ImageNet weights for (none: empty)
    imagenet_resolutions: tuple[int, ...] | None  # None: the weights load at any side
    mean: float  # normalisation: (pixel - mean) / std
    std: float
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
        """The Keras model (softmax classifier); weights None or 'imagenet'."""
        return self.factory(alpha, resolution, classes, weights)


def alpha_text(alpha: float) -> str:
    """alpha as names show it: two decimals (0.25, 1.00), or every digit when two would round it (0.251).

    Two alphas must never share a name: their folders, files and checkpoints would overwrite each other.
    """
    short = f"{alpha:.2f}"
    return short if float(short) == float(alpha) else repr(float(alpha))
