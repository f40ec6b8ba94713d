"""MobileNet V3-Small and V3-Large (Howard et al. 2019, arXiv 1905.02244), as keras.applications builds them.

The full (not "minimalistic") models with their Rescaling layer, so they take raw 0..255 pixels (mean 0,
std 1); ImageNet weights for alpha 0.75 and 1.0 load at any side (trained at 224).
"""
from functools import partial

from mobilenet_edge.pipeline.archs.entry import Arch
from mobilenet_edge.pipeline.archs.keras_apps import keras_application
from mobilenet_edge.pipeline.cost.v3 import cost_v3

PAPER = "Howard et al. 2019, arXiv 1905.02244"
OPTIONS = {"minimalistic": False, "include_preprocessing": True}

V3_SMALL = Arch(
    key="v3-small", title="MobileNet V3-Small", short_title="V3-Small", prefix="mobilenet_v3_small", paper=PAPER,
    factory=keras_application("MobileNetV3Small", **OPTIONS), cost=partial(cost_v3, "v3-small"),
    max_alpha=1.0, imagenet_alphas=(0.75, 1.0), imagenet_resolutions=None, mean=0.0, std=1.0, marker="^")
V3_LARGE = Arch(
    key="v3-large", title="MobileNet V3-Large", short_title="V3-Large", prefix="mobilenet_v3_large", paper=PAPER,
    factory=keras_application("MobileNetV3Large", **OPTIONS), cost=partial(cost_v3, "v3-large"),
    max_alpha=1.0, imagenet_alphas=(0.75, 1.0), imagenet_resolutions=None, mean=0.0, std=1.0, marker="D")
